package browser

import (
	"fmt"
	"math"
)

// mat3 is a 3×3 matrix, row major: rotations and plane homographies.
type mat3 [9]float64

func (m mat3) mul(n mat3) mat3 {
	var r mat3
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			for k := 0; k < 3; k++ {
				r[i*3+j] += m[i*3+k] * n[k*3+j]
			}
		}
	}
	return r
}

func (m mat3) mulVec(v [3]float64) [3]float64 {
	return [3]float64{
		m[0]*v[0] + m[1]*v[1] + m[2]*v[2],
		m[3]*v[0] + m[4]*v[1] + m[5]*v[2],
		m[6]*v[0] + m[7]*v[1] + m[8]*v[2],
	}
}

// apply maps a point through the homography m; ok is false for a point
// that maps to infinity or behind the projection.
func (m mat3) apply(x, y float64) (float64, float64, bool) {
	w := m[6]*x + m[7]*y + m[8]
	if w <= 1e-12 {
		return 0, 0, false
	}
	return (m[0]*x + m[1]*y + m[2]) / w, (m[3]*x + m[4]*y + m[5]) / w, true
}

func (m mat3) inverse() (mat3, bool) {
	a, b, c := m[0], m[1], m[2]
	d, e, f := m[3], m[4], m[5]
	g, h, i := m[6], m[7], m[8]
	A, B, C := e*i-f*h, -(d*i - f*g), d*h-e*g
	det := a*A + b*B + c*C
	if math.Abs(det) < 1e-12 {
		return mat3{}, false
	}
	inv := mat3{
		A, -(b*i - c*h), b*f - c*e,
		B, a*i - c*g, -(a*f - c*d),
		C, -(a*h - b*g), a*e - b*d,
	}
	for k := range inv {
		inv[k] /= det
	}
	// inv is exactly m⁻¹ (not a multiple of it): a frame point on the
	// visible half of the panel's plane maps back with w > 0, one beyond
	// the horizon with w < 0, which apply refuses.
	return inv, true
}

// rotation turns by roll about the optical axis, yaw about the vertical
// axis and pitch about the horizontal axis (degrees), applied in that
// order to the panel.
func rotation(roll, yaw, pitch float64) mat3 {
	r, y, p := roll*math.Pi/180, yaw*math.Pi/180, pitch*math.Pi/180
	rz := mat3{math.Cos(r), -math.Sin(r), 0, math.Sin(r), math.Cos(r), 0, 0, 0, 1}
	ry := mat3{math.Cos(y), 0, math.Sin(y), 0, 1, 0, -math.Sin(y), 0, math.Cos(y)}
	rx := mat3{1, 0, 0, 0, math.Cos(p), -math.Sin(p), 0, math.Sin(p), math.Cos(p)}
	return rx.mul(ry).mul(rz)
}

// fourPoint solves for the homography that maps each src[i] to dst[i].
func fourPoint(src, dst [4][2]float64) (mat3, error) {
	// Unknowns h0..h7 (h8 = 1): two equations per correspondence.
	var a [8][9]float64
	for i := 0; i < 4; i++ {
		x, y, u, v := src[i][0], src[i][1], dst[i][0], dst[i][1]
		a[2*i] = [9]float64{x, y, 1, 0, 0, 0, -u * x, -u * y, u}
		a[2*i+1] = [9]float64{0, 0, 0, x, y, 1, -v * x, -v * y, v}
	}
	// Gaussian elimination with partial pivoting.
	for col := 0; col < 8; col++ {
		piv := col
		for r := col + 1; r < 8; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[piv][col]) {
				piv = r
			}
		}
		if math.Abs(a[piv][col]) < 1e-12 {
			return mat3{}, fmt.Errorf("scene: degenerate corners %v → %v", src, dst)
		}
		a[col], a[piv] = a[piv], a[col]
		for r := 0; r < 8; r++ {
			if r == col {
				continue
			}
			f := a[r][col] / a[col][col]
			for c := col; c < 9; c++ {
				a[r][c] -= f * a[col][c]
			}
		}
	}
	var h mat3
	for i := 0; i < 8; i++ {
		h[i] = a[i][8] / a[i][i]
	}
	h[8] = 1
	return h, nil
}
