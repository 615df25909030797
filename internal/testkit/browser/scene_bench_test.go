package browser

import (
	"image"
	"testing"
)

func BenchmarkSceneRender(b *testing.B) {
	src := image.NewRGBA(image.Rect(0, 0, 240, 240))
	for _, v := range CameraViews(1280, 720) {
		b.Run(v.Name, func(b *testing.B) {
			for b.Loop() {
				if _, err := v.Scene.Render(src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
