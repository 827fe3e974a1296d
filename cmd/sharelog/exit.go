package main

import (
	"errors"
	"fmt"

	"github.com/alecthomas/kong"

	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/store"
)

// Exit statuses, one per class of failure, so that a script can tell a
// server that is down from a question with no answer or a ledger that was
// tampered with. `sharelog --help` and README.md list them.
const (
	ExitOK          = 0 // success
	ExitInternal    = 1 // anything else: a bug, an I/O failure, an internal error of the server
	ExitUsage       = 2 // the command line is wrong: unknown command or flag, missing argument
	ExitUnavailable = 3 // the server cannot be reached or is not ready (HTTP 503); try again
	ExitNotFound    = 4 // what was asked for does not exist (HTTP 404): no such disclosure, request, notice, checkpoint, data directory
	ExitRefused     = 5 // the server refused the request (HTTP 400, 401, 403, 409, 413, 415): invalid events, a conflict with the ledger's state, no valid token, a role that may not
	ExitTampered    = 6 // evidence does not check: verify found the ledger modified, or a checkpoint's signature or a proof failed
)

// exitHelp is the exit statuses as `sharelog --help` shows them.
const exitHelp = `Exit status:
  0  success
  1  internal error (a bug, an I/O failure, the server's internal error)
  2  usage: the command line is wrong
  3  unavailable: the server cannot be reached or is not ready; try again
  4  not found: no such disclosure, request, notice, checkpoint or data directory
  5  refused: the server refused the request (invalid events, a conflict with the ledger,
     no valid --token, a role that may not, a lookup without --reason)
  6  tampered: verify found the ledger modified, or a signature or proof failed`

// usageError is a command line the command itself finds wrong.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// tamperedError is evidence that does not check.
type tamperedError struct{ err error }

func (e tamperedError) Error() string { return e.err.Error() }
func (e tamperedError) Unwrap() error { return e.err }

func tampered(err error) error {
	if err == nil {
		return nil
	}
	return tamperedError{err}
}

// exitCode is the exit status for err.
func exitCode(err error) int {
	var (
		exit  exitError
		parse *kong.ParseError
		usage usageError
		tamp  tamperedError
		te    *store.TamperError
		se    *store.StateError
		p     *slhttp.Problem
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &exit):
		return int(exit)
	case errors.As(err, &parse), errors.As(err, &usage):
		return ExitUsage
	case errors.As(err, &tamp), errors.As(err, &te), errors.As(err, &se):
		return ExitTampered
	case errors.As(err, &p):
		return codeExit(p.Code)
	}
	return codeExit(ledger.ErrorCode(err))
}

// codeExit maps a ledger error code (internal/ledger/error.go) to an exit status.
func codeExit(code string) int {
	switch code {
	case ledger.EUNAVAILABLE:
		return ExitUnavailable
	case ledger.ENOTFOUND:
		return ExitNotFound
	case ledger.EINVALID, ledger.ECONFLICT, ledger.ETOOLARGE, ledger.EUNAUTHENTICATED, ledger.EFORBIDDEN:
		return ExitRefused
	}
	return ExitInternal
}
