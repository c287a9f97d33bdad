//! Compute devices (burn flex on the CPU, wgpu on the GPU, CUDA natively when built with `--features cuda`) and
//! reading tensors back, always async so the same code runs in the browser.

use crate::error::{Error, Result};
#[cfg(feature = "engine")]
use crate::model::weights::HostTensor;
/// The device tensors live on (burn's, chosen at run time), for callers that do not depend on burn.
#[cfg(feature = "engine")]
pub use burn::tensor::Device;
#[cfg(feature = "engine")]
use {
    burn::tensor::wgpu::WgpuInitError,
    burn::tensor::{DeviceKind, Int, Tensor},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    Cpu,
    Wgpu,
    /// NVIDIA GPUs through CUDA: only in builds with the `cuda` feature.
    Cuda,
}

impl std::str::FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "wgpu" | "gpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            other => Err(Error::invalid(format!("unknown device \"{other}\": expected cpu, wgpu or cuda"))),
        }
    }
}

/// How a model's weight matrices (its linear maps, embedding and unembedding) are held on the device. `F16`
/// halves their memory and the bandwidth every pass spends reading them, on devices with f16 arithmetic
/// (WebGPU's shader-f16, CUDA); each matrix product then runs on an f16 copy of its input. Norms, attention,
/// softmax, the residual stream, every hook and every steering vector stay f32 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    F16,
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| Error::invalid(format!("unknown precision \"{s}\": expected f32 or f16")))
    }
}

impl Precision {
    const ALL: [Self; 2] = [Self::F32, Self::F16];

    /// Its name on the command line, in links and in the lab (`FromStr` reads it back).
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
        }
    }
}

/// Whether `device` computes in f16 (WebGPU needs the adapter's shader-f16 feature).
#[cfg(feature = "engine")]
pub fn has_f16(device: &Device) -> bool {
    device.supports_dtype(burn::tensor::DType::F16)
}

/// The device for `choice`. The wgpu runtime initialises once per process; later calls reuse it.
#[cfg(feature = "engine")]
// The probing lock is held across the adapter's await on purpose: it serialises the probes.
#[allow(clippy::await_holding_lock)]
pub async fn init_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::flex()),
        DeviceChoice::Wgpu => {
            static WGPU: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
            if let Some(d) = WGPU.get() {
                return Ok(d.clone());
            }
            // Natively, one thread at a time probes the adapters (wgpu's EGL probe fails when two race).
            #[cfg(not(target_arch = "wasm32"))]
            let _one_at_a_time = {
                static PROBING: std::sync::Mutex<()> = std::sync::Mutex::new(());
                PROBING.lock().unwrap_or_else(|e| e.into_inner())
            };
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
        DeviceChoice::Cuda => cuda().await,
    }
}

/// The first CUDA GPU, checked with one small round trip (burn initialises it lazily and panics on failure).
#[cfg(all(feature = "cuda", not(target_arch = "wasm32")))]
async fn cuda() -> Result<Device> {
    checked(|| Device::cuda(0), "CUDA")
}

#[cfg(all(feature = "engine", not(all(feature = "cuda", not(target_arch = "wasm32")))))]
async fn cuda() -> Result<Device> {
    Err(Error::Device("this steerlab was built without CUDA: build it with `--features cuda`, or use wgpu".into()))
}

/// The device `make` gives, if 1 + 2 computes to 3 on it; a panic inside (no driver) becomes an error.
#[cfg(feature = "engine")]
#[cfg(not(target_arch = "wasm32"))]
#[cfg_attr(not(feature = "cuda"), allow(dead_code))] // only CUDA builds use it outside the tests
fn checked(make: impl FnOnce() -> Device + std::panic::UnwindSafe, what: &str) -> Result<Device> {
    let probe = std::panic::catch_unwind(|| {
        let d = make();
        let t = Tensor::<1>::from_data(burn::tensor::TensorData::new(vec![1.0f32, 2.0], [2]), &d);
        let sum = t.sum().into_data().try_to_vec::<f32>().ok().and_then(|v| v.first().copied());
        (d, sum)
    });
    match probe {
        Ok((d, Some(3.0))) => Ok(d),
        Ok((_, sum)) => Err(Error::Device(format!("the {what} device computed 1 + 2 = {sum:?}"))),
        Err(_) => Err(Error::Device(format!("no usable {what} device (is its driver installed?)"))),
    }
}

/// Reads a tensor back to the host as f32.
#[cfg(feature = "engine")]
pub async fn read<const D: usize>(t: Tensor<D>) -> Result<HostTensor> {
    let shape = t.dims().to_vec();
    let data = t.into_data_async().await.map_err(|e| Error::Device(format!("reading a tensor back: {e:?}")))?;
    let data = data.try_into_vec_as::<f32>().map_err(|e| Error::Device(format!("{e:?}")))?;
    Ok(HostTensor::new(shape, data))
}

/// Reads an integer tensor of token ids (or other indices) back to the host.
#[cfg(feature = "engine")]
pub async fn read_ids<const D: usize>(t: Tensor<D, Int>) -> Result<Vec<u32>> {
    let data = t.into_data_async().await.map_err(|e| Error::Device(format!("reading a tensor back: {e:?}")))?;
    let data = data.try_into_vec_as::<i64>().map_err(|e| Error::Device(format!("{e:?}")))?;
    data.into_iter()
        .map(|i| u32::try_from(i).map_err(|_| Error::Device(format!("the device gave the index {i}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_checked_before_use() {
        assert!(checked(Device::flex, "CPU").is_ok());
        let e = checked(|| panic!("no driver"), "CUDA").unwrap_err();
        assert_eq!(e.to_string(), "device: no usable CUDA device (is its driver installed?)");
        #[cfg(not(feature = "cuda"))]
        assert!(
            pollster::block_on(init_device(DeviceChoice::Cuda)).unwrap_err().to_string().contains("--features cuda")
        );
    }
}
