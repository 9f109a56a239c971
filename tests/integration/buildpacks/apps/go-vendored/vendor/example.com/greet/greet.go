// Package greet is a tiny module of the paas tests, vendored into the app that uses it.
package greet

// Hello greets who.
func Hello(who string) string { return "hello from the " + who + " greet module" }
