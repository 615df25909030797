// Command tinyinit is a stand-in /init for the fwimage tests.
package main

func main() {}
