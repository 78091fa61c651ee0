"""Getting images in: the SDK a platform backend calls, and the uploader behind `modstream upload`."""
