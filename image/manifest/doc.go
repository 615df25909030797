// Package manifest defines the firmware image manifest (manifest.json): the
// versions that went into an image and the size and sha256 of each part,
// its strict parser, and Verify, which rechecks an image directory against
// its manifest, including the files inside the initramfs.
package manifest
