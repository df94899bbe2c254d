-- The sub-stream is part of the camera's settings (CameraSpec.sub_url, in `spec`), which
-- the gateway analyses; it no longer needs a column of its own.
ALTER TABLE camera_registry DROP COLUMN sub_url;
