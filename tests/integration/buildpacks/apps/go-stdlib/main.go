// A stdlib-only web app: answers "hello from go VERSION" and the config var GREETING.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

const version = "v1"

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from go %s (greeting %q)\n", version, os.Getenv("GREETING"))
	})
	log.Printf("listening on :%s", os.Getenv("PORT"))
	log.Fatal(http.ListenAndServe(":"+os.Getenv("PORT"), nil))
}
