package store

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// dataRanges returns the [start, end) ranges of f that hold data, skipping
// its holes with lseek's SEEK_DATA and SEEK_HOLE; the whole file where the
// file system cannot tell.
func dataRanges(f *os.File, size int64) ([][2]int64, error) {
	var out [][2]int64
	for off := int64(0); off < size; {
		start, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) { // no data after off
			break
		}
		if err != nil {
			return [][2]int64{{0, size}}, nil
		}
		end, err := unix.Seek(int(f.Fd()), start, unix.SEEK_HOLE)
		if err != nil {
			return [][2]int64{{0, size}}, nil
		}
		out = append(out, [2]int64{start, end})
		off = end
	}
	return out, nil
}
