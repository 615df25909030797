// Package cli gives the project's six commands (zmonitor, zm-central,
// zm-pair, zm-board, zm-image, zm-demo) one command-line behaviour:
//
//   - help (-h, -help, --help, or "help [COMMAND]") goes to standard
//     output and exits 0; a command's help lists every one of its flags;
//   - bad usage (unknown command or flag, wrong arguments) says what is
//     wrong on standard error and exits 2; any other failure exits 1;
//   - flags may come after positional arguments ("devices revoke ZM-001
//     --dir /srv/central"); "--" ends the flags;
//   - "version" prints the tool, internal/base/version's version and build
//     time (Version; the caller passes them: internal/base packages import
//     only the standard library).
package cli
