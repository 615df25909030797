// Package clocktest is a manual clock.Clock for tests: time moves only when
// the test calls Advance, and timers fire then, in order.
package clocktest
