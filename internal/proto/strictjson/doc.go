// Package strictjson decodes JSON as strictly as the device reads its
// payload (internal/proto/payload's strictObject): what encoding/json lets
// through silently is refused with an error that names the member.
//
//   - invalid UTF-8 anywhere (encoding/json turns it into U+FFFD);
//   - a member name that matches a field only when case is folded
//     ({"QR": …} for "qr"), or that the target does not have;
//   - a member named twice in one object (encoding/json keeps the last, so
//     two readers could see two different values);
//   - null (encoding/json leaves the field as it was);
//   - anything after the one JSON value.
//
// The Central Station decodes every JSON it takes with it: tablet API
// request bodies (internal/proto/tabletwire.DecodeRequest), enrollment
// import files (internal/central/store.ParseEnrollments) and the device's
// answers (internal/central/deviceclient).
package strictjson
