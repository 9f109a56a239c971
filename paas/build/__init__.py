"""The image builder: Dockerfiles and buildpacks into images."""
