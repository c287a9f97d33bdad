//! Compute devices (burn flex on the CPU, wgpu on the GPU) and reading tensors back, always async
//! so the same code runs in the browser.

use crate::error::{Error, Result};
use crate::model::weights::HostTensor;
/// The device tensors live on (burn's, chosen at run time), for callers that do not depend on burn.
pub use burn::tensor::Device;
use burn::tensor::wgpu::WgpuInitError;
use burn::tensor::{DeviceKind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    Cpu,
    Wgpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "wgpu" | "gpu" => Ok(Self::Wgpu),
            other => Err(Error::invalid(format!("unknown device \"{other}\": expected cpu or wgpu"))),
        }
    }
}

/// The device for `choice`. The wgpu runtime initialises once per process; later calls reuse it.
pub async fn init_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::flex()),
        DeviceChoice::Wgpu => {
            static WGPU: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
            if let Some(d) = WGPU.get() {
                return Ok(d.clone());
            }
            let d = match Device::wgpu_options().init_async().await {
                Ok(d) => d,
                // A concurrent caller registered the runtime first: use the one it made.
                Err(WgpuInitError::Registration { message }) if message.contains("already initialized") => {
                    Device::wgpu(DeviceKind::DefaultDevice)
                }
                Err(e) => return Err(Error::Device(format!("no usable WebGPU/wgpu adapter: {e}"))),
            };
            Ok(WGPU.get_or_init(|| d).clone())
        }
    }
}

/// Reads a tensor back to the host as f32.
pub async fn read<const D: usize>(t: Tensor<D>) -> Result<HostTensor> {
    let shape = t.dims().to_vec();
    let data = t.into_data_async().await.map_err(|e| Error::Device(format!("reading a tensor back: {e:?}")))?;
    let data = data.try_into_vec_as::<f32>().map_err(|e| Error::Device(format!("{e:?}")))?;
    Ok(HostTensor::new(shape, data))
}
