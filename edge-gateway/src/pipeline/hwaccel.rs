//! Hardware decoding through FFmpeg's hwcontext (VAAPI on Intel/AMD graphics, CUDA/NVDEC on
//! NVIDIA), chosen in `[decode]`; software decoding is the default and the fallback. A
//! decoder given a device decodes on it and copies only the pictures due for analysis back
//! to memory (NV12), so the rest of the pipeline sees ordinary frames.
//!
//! `ffmpeg-next` has no safe wrapper for hwcontext, so this module is the gateway's one
//! FFI boundary: a device reference that frees itself, a pixel-format callback, and the
//! copy back. Everything else goes through `ffmpeg-next`.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fmt;
use std::ptr;

use ffmpeg::ffi;
use ffmpeg_next as ffmpeg;

/// Which hardware decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HwKind {
    Vaapi,
    Cuda,
}

impl HwKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HwKind::Vaapi => "vaapi",
            HwKind::Cuda => "cuda",
        }
    }

    fn device_type(self) -> ffi::AVHWDeviceType {
        match self {
            HwKind::Vaapi => ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_VAAPI,
            HwKind::Cuda => ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_CUDA,
        }
    }
}

impl std::str::FromStr for HwKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "vaapi" => Ok(Self::Vaapi),
            "cuda" => Ok(Self::Cuda),
            _ => Err("must be software, vaapi or cuda".into()),
        }
    }
}

/// `[decode]`: hardware to decode on, and which device (a DRM render node such as
/// `/dev/dri/renderD128` for VAAPI, a GPU index such as `0` for CUDA; FFmpeg's default
/// when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HwSettings {
    pub kind: HwKind,
    pub device: Option<String>,
}

/// An open hardware device, shared by reference with the decoders that use it.
pub struct HwDevice {
    kind: HwKind,
    /// An `AVBufferRef` to the device context, owned by this value.
    ctx: *mut ffi::AVBufferRef,
}

// SAFETY: an AVBufferRef's reference counting is atomic, and the device context behind it
// is only read by FFmpeg after creation; the pointer is never handed out, only new
// references made from it.
unsafe impl Send for HwDevice {}

impl fmt::Debug for HwDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HwDevice")
            .field("kind", &self.kind)
            .finish()
    }
}

impl HwDevice {
    /// Opens the device, or says why it cannot be used.
    pub fn open(settings: &HwSettings) -> Result<Self, String> {
        let device = settings
            .device
            .as_deref()
            .map(CString::new)
            .transpose()
            .map_err(|_| "the device name contains a NUL byte".to_owned())?;
        let mut ctx = ptr::null_mut();
        // SAFETY: `ctx` receives a new reference on success and stays null on failure; the
        // device name lives until the call returns; no options, no flags.
        let ret = unsafe {
            ffi::av_hwdevice_ctx_create(
                &mut ctx,
                settings.kind.device_type(),
                device.as_ref().map_or(ptr::null(), |d| d.as_ptr()),
                ptr::null_mut(),
                0,
            )
        };
        if ret < 0 || ctx.is_null() {
            return Err(format!(
                "cannot open the {} device {}: {}",
                settings.kind.as_str(),
                settings.device.as_deref().unwrap_or("(default)"),
                ffmpeg::Error::from(ret)
            ));
        }
        Ok(Self {
            kind: settings.kind,
            ctx,
        })
    }

    pub fn kind(&self) -> HwKind {
        self.kind
    }

    /// Makes `decoder` decode on this device. Call before the decoder is opened.
    pub fn attach(&self, decoder: &mut ffmpeg::codec::Context) {
        // SAFETY: the codec context is not open yet, so FFmpeg reads neither field until
        // `avcodec_open2`; it owns (and frees) the new reference from then on.
        unsafe {
            let raw = decoder.as_mut_ptr();
            (*raw).hw_device_ctx = ffi::av_buffer_ref(self.ctx);
            (*raw).get_format = Some(hardware_format);
        }
    }
}

impl Drop for HwDevice {
    fn drop(&mut self) {
        // SAFETY: `ctx` is this value's own reference; decoders hold their own.
        unsafe { ffi::av_buffer_unref(&mut self.ctx) }
    }
}

/// Picks the hardware surface format where the decoder offers one, else what FFmpeg would
/// pick (software), so a stream the hardware cannot decode still decodes.
unsafe extern "C" fn hardware_format(
    ctx: *mut ffi::AVCodecContext,
    formats: *const ffi::AVPixelFormat,
) -> ffi::AVPixelFormat {
    let mut at = formats;
    // SAFETY: FFmpeg passes a list ended by AV_PIX_FMT_NONE.
    unsafe {
        while *at != ffi::AVPixelFormat::AV_PIX_FMT_NONE {
            if is_hardware(*at) {
                return *at;
            }
            at = at.add(1);
        }
        ffi::avcodec_default_get_format(ctx, formats)
    }
}

fn is_hardware(format: ffi::AVPixelFormat) -> bool {
    matches!(
        format,
        ffi::AVPixelFormat::AV_PIX_FMT_VAAPI | ffi::AVPixelFormat::AV_PIX_FMT_CUDA
    )
}

/// Whether `picture` lives on a hardware device (its planes are not readable here).
pub fn on_device(picture: &ffmpeg::frame::Video) -> bool {
    // SAFETY: reading the format field of a valid frame.
    let format = unsafe { (*picture.as_ptr()).format };
    format == ffi::AVPixelFormat::AV_PIX_FMT_VAAPI as i32
        || format == ffi::AVPixelFormat::AV_PIX_FMT_CUDA as i32
}

/// Copies a picture on a device into memory (NV12 for 8-bit streams), with its timing and
/// other properties.
pub fn download(picture: &ffmpeg::frame::Video) -> Result<ffmpeg::frame::Video, ffmpeg::Error> {
    let mut copy = ffmpeg::frame::Video::empty();
    // SAFETY: both frames are valid; the copy is empty, so FFmpeg allocates its planes in
    // the device's preferred software format.
    let ret = unsafe { ffi::av_hwframe_transfer_data(copy.as_mut_ptr(), picture.as_ptr(), 0) };
    if ret < 0 {
        return Err(ffmpeg::Error::from(ret));
    }
    // SAFETY: as above; only metadata is copied.
    let ret = unsafe { ffi::av_frame_copy_props(copy.as_mut_ptr(), picture.as_ptr()) };
    if ret < 0 {
        return Err(ffmpeg::Error::from(ret));
    }
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_back_what_they_write() {
        for k in [HwKind::Vaapi, HwKind::Cuda] {
            assert_eq!(k.as_str().parse::<HwKind>(), Ok(k));
        }
        assert!("nvdec".parse::<HwKind>().is_err());
    }

    #[test]
    fn a_device_that_is_not_there_is_refused_with_the_reason() {
        ffmpeg::init().unwrap();
        let missing = HwSettings {
            kind: HwKind::Vaapi,
            device: Some("/nonexistent/renderD128".into()),
        };
        let err = HwDevice::open(&missing).unwrap_err();
        assert!(err.contains("vaapi"), "{err}");
        assert!(err.contains("/nonexistent/renderD128"), "{err}");
    }
}
