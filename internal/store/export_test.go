package store

// Hooks into the dedupe filter (seen.go) for tests.

// seenWait waits until the last build of the dedupe filter that started
// has ended.
func (s *Store) seenWait() {
	s.seen.mu.Lock()
	built := s.seen.built
	s.seen.mu.Unlock()
	<-built
}

// seenSkipped returns how many dedupe lookups the filter has saved.
func (s *Store) seenSkipped() uint64 {
	s.seen.mu.Lock()
	defer s.seen.mu.Unlock()
	return s.seen.skipped
}

// seenCapacity returns the capacity of the trusted filter, 0 while there
// is none.
func (s *Store) seenCapacity() uint {
	s.seen.mu.Lock()
	defer s.seen.mu.Unlock()
	if s.seen.cur == nil {
		return 0
	}
	return s.seen.curCap
}

// seenGrowing reports whether a build of the filter has started and not
// ended.
func (s *Store) seenGrowing() bool {
	s.seen.mu.Lock()
	defer s.seen.mu.Unlock()
	return s.seen.growing
}
