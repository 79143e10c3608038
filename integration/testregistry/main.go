// Command testregistry is a container registry (the Docker Registry HTTP
// API v2, in memory) for push tests on machines that reach no registry. The
// integration tests build it as a static binary and run it from a FROM
// scratch image on a sandbox's own daemon, so a job can push to
// localhost:5000 as it would to a real registry, or as a job service.
//
//	testregistry [addr [cert.pem key.pem]]
//
// With a certificate and key it serves HTTPS only.
package main

import (
	"log"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := ":5000"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	server := &http.Server{Addr: addr, Handler: registry.New()}
	if len(os.Args) > 3 {
		log.Printf("registry listening on %s (TLS)", addr)
		log.Fatal(server.ListenAndServeTLS(os.Args[2], os.Args[3]))
	}
	log.Printf("registry listening on %s", addr)
	log.Fatal(server.ListenAndServe())
}
