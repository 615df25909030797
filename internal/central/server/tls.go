package server

import (
	"crypto/tls"
	"net/http"
	"time"
)

// TLSConfig is the tablet API's TLS configuration: TLS 1.3 only.
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
	}
}

// HTTPServer wraps h for addr with TLS 1.3 (ListenAndServeTLS("", "")
// serves it), conservative timeouts and header limits. Bodies are limited
// by the handlers.
func HTTPServer(addr string, h http.Handler, cert tls.Certificate) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		TLSConfig:         TLSConfig(cert),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}
