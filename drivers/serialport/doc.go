// Package serialport opens the UART of the serial diagnostics console.
//
// It wraps github.com/goburrow/serial with the settings the console needs
// and fixes two traps of that package:
//
//   - its default parity is Even: Open always asks for 8 data bits, no
//     parity, 1 stop bit (8N1), raw mode (no echo, no line editing, no CR/LF
//     translation by the kernel);
//   - its writes are single non-blocking write(2) calls that may write only
//     part of the buffer or fail with EAGAIN when the kernel's transmit
//     buffer is full: Port.Write loops until every byte is written, an error
//     occurs, or Config.WriteTimeout passes.
//
// Reads wait at most Config.ReadTimeout. A read that times out returns
// 0, ErrTimeout: the port stays usable and the caller reads again (this is
// how the console notices that its context is done). io.EOF means the line
// hung up (a pseudo-terminal whose other side closed). Any other error is
// final for the port.
package serialport
