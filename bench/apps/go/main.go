// bench/deploy's Go sample app: net/http on $PORT answering "go VERSION" (the VERSION
// file the bench writes for each deploy, read at start).
package main

import (
	"net/http"
	"os"
	"strings"
)

func main() {
	version, err := os.ReadFile("VERSION")
	if err != nil {
		panic(err)
	}
	body := "go " + strings.TrimSpace(string(version)) + "\n"
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(body))
	})
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		panic(err)
	}
}
