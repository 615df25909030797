// Package identity is who the device is, as the firmware keeps it on the
// data partition: the identity set at manufacturing (the first boot stores
// the device ID and serial the bootloader gives, later boots read them back
// whatever the bootloader says) and the enrollment record made from it and
// the key store's public keys, for the Central Station's inventory.
//
// Files are written synced and renamed into place, so a power cut leaves
// the old file or the new one, never a torn one.
package identity
