//! [`GpuContext`]: the adapter, device and queue, the pipeline cache keyed by
//! [`KernelId`], and the pending command encoder; [`GpuError`] for this layer.
//!
//! Dispatches are recorded into one pending encoder and submitted when a buffer is read, on
//! [`GpuContext::flush`], or every `MAX_PENDING` dispatches, so a training step costs a
//! handful of submits rather than one per op.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};

use wgpu::util::DeviceExt;

use super::ops::{Access, KernelId};

/// Dispatches recorded before the pending encoder is submitted anyway: bounds the memory held
/// by not-yet-submitted param buffers and lets the device start while the host records more.
const MAX_PENDING: usize = 64;

/// Errors of the wgpu layer.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter on any backend wgpu was built with (no driver, or `WGPU_BACKEND` excludes it).
    #[error("no wgpu adapter found (is a Vulkan, Metal, DX12 or GL driver installed?)")]
    NoAdapter,
    /// Only a software rasterizer (lavapipe/llvmpipe, WARP, SwiftShader) was found and software
    /// adapters were not allowed: such adapters are far slower than the native CPU backend.
    #[error(
        "only a software wgpu adapter was found ({name}); it is slower than the CPU backend, \
         ask for it explicitly (`--backend wgpu`) to use it anyway"
    )]
    SoftwareOnly { name: String },
    /// The adapter refused to create a device with the limits we ask for.
    #[error("requesting a device from adapter {adapter}: {source}")]
    RequestDevice {
        adapter: String,
        source: wgpu::RequestDeviceError,
    },
    /// Mapping a staging buffer for reading failed (device lost or out of memory).
    #[error("mapping a buffer for reading: {0}")]
    BufferMap(#[from] wgpu::BufferAsyncError),
    /// The mapped range of a staging buffer could not be viewed.
    #[error("viewing a mapped buffer: {0}")]
    MapRange(#[from] wgpu::MapRangeError),
    /// Waiting for the device to finish failed.
    #[error("waiting for the device: {0}")]
    Poll(#[from] wgpu::PollError),
}

/// A compiled kernel: its pipeline and the explicit bind group layout it was built with.
struct Kernel {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

/// Work recorded but not yet submitted.
struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    dispatches: usize,
}

/// One wgpu device and queue with a pipeline cache and a batching command encoder.
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    kernels: Mutex<HashMap<KernelId, Arc<Kernel>>>,
    pending: Mutex<Pending>,
}

/// Rank of an adapter type, best first: real GPUs before virtual ones before software.
fn device_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

impl GpuContext {
    /// Opens the best adapter wgpu finds (honouring `WGPU_BACKEND`). A software adapter is
    /// refused with [`GpuError::SoftwareOnly`] unless `allow_software`: "auto" backend
    /// selection passes `false`, an explicit `--backend wgpu` passes `true`.
    pub fn new(allow_software: bool) -> Result<Self, GpuError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        // Prefer real GPUs; among equals prefer Vulkan/Metal/DX12 over GL (compute on GL is
        // the least capable path).
        let adapter = adapters
            .into_iter()
            .min_by_key(|a| {
                let info = a.get_info();
                (
                    device_rank(info.device_type),
                    info.backend == wgpu::Backend::Gl,
                )
            })
            .ok_or(GpuError::NoAdapter)?;
        let info = adapter.get_info();
        if info.device_type == wgpu::DeviceType::Cpu && !allow_software {
            return Err(GpuError::SoftwareOnly { name: info.name });
        }
        // Default limits, not the adapter's: kernels written within them run on any
        // WebGPU-class GPU, and a test passing on lavapipe means it passes there too.
        let desc = wgpu::DeviceDescriptor {
            label: Some("tandem device"),
            required_limits: wgpu::Limits::default(),
            ..Default::default()
        };
        let (device, queue) =
            pollster::block_on(adapter.request_device(&desc)).map_err(|source| {
                GpuError::RequestDevice {
                    adapter: info.name.clone(),
                    source,
                }
            })?;
        Ok(Self {
            device,
            queue,
            info,
            kernels: Mutex::new(HashMap::new()),
            pending: Mutex::new(Pending {
                encoder: None,
                dispatches: 0,
            }),
        })
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// e.g. `"llvmpipe (LLVM 15.0.6, 256 bits) (Cpu, Vulkan)"`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.device_type, self.info.backend
        )
    }

    /// The kernel for `id`, compiled on first use.
    fn kernel(&self, id: KernelId) -> Arc<Kernel> {
        let mut kernels = self.kernels.lock().expect("kernel cache poisoned");
        kernels
            .entry(id)
            .or_insert_with(|| Arc::new(self.compile(id)))
            .clone()
    }

    fn compile(&self, id: KernelId) -> Kernel {
        let spec = id.spec();
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(spec.label),
                source: wgpu::ShaderSource::Wgsl(spec.source.into()),
            });
        // Binding 0 is always the params uniform; the storage buffers follow in order.
        let mut entries = vec![layout_entry(0, wgpu::BufferBindingType::Uniform)];
        entries.extend(spec.buffers.iter().enumerate().map(|(i, access)| {
            let read_only = matches!(access, Access::Read);
            layout_entry(i as u32 + 1, wgpu::BufferBindingType::Storage { read_only })
        }));
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(spec.label),
                entries: &entries,
            });
        let pipeline_layout = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(spec.label),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(spec.label),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
        Kernel { pipeline, layout }
    }

    /// Records one dispatch of `id` with `params` at binding 0 and `buffers` at bindings
    /// 1.. (in the order of the kernel's spec) over `groups` workgroups.
    pub(crate) fn dispatch(
        &self,
        id: KernelId,
        params: &[u8],
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) {
        let kernel = self.kernel(id);
        let label = id.spec().label;
        debug_assert_eq!(
            buffers.len(),
            id.spec().buffers.len(),
            "{label}: buffer count"
        );
        let uniform = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: params,
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        entries.extend(
            buffers
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry {
                    binding: i as u32 + 1,
                    resource: b.as_entire_binding(),
                }),
        );
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &kernel.layout,
            entries: &entries,
        });
        self.record(|encoder| {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes: None,
            });
            pass.set_pipeline(&kernel.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        });
    }

    /// Records a buffer-to-buffer copy of `bytes` bytes.
    pub(crate) fn copy(&self, src: &wgpu::Buffer, dst: &wgpu::Buffer, bytes: u64) {
        self.record(|encoder| encoder.copy_buffer_to_buffer(src, 0, dst, 0, bytes));
    }

    /// Writes `data` into `dst` after everything recorded so far. `Queue::write_buffer` runs
    /// at the start of the next submit, so the pending work must be submitted first or it
    /// would see the new contents.
    pub(crate) fn write(&self, dst: &wgpu::Buffer, data: &[u8]) {
        self.flush();
        self.queue.write_buffer(dst, 0, data);
    }

    fn record(&self, f: impl FnOnce(&mut wgpu::CommandEncoder)) {
        let mut pending = self.pending.lock().expect("pending encoder poisoned");
        let encoder = pending.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("tandem batch"),
                })
        });
        f(encoder);
        pending.dispatches += 1;
        if pending.dispatches >= MAX_PENDING {
            self.submit(&mut pending);
        }
    }

    fn submit(&self, pending: &mut Pending) {
        if let Some(encoder) = pending.encoder.take() {
            self.queue.submit([encoder.finish()]);
        }
        pending.dispatches = 0;
    }

    /// Submits everything recorded so far (without waiting).
    pub fn flush(&self) {
        let mut pending = self.pending.lock().expect("pending encoder poisoned");
        self.submit(&mut pending);
    }

    /// Submits everything recorded so far and waits until the device has finished it.
    pub fn sync(&self) -> Result<(), GpuError> {
        self.flush();
        self.device.poll(wgpu::PollType::wait_indefinitely())?;
        Ok(())
    }

    /// Copies the first `bytes` bytes of `src` back to the host, after all recorded work.
    pub(crate) fn read_bytes(&self, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>, GpuError> {
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tandem read staging"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        {
            // The copy goes into the pending encoder so that it is ordered after the
            // kernels that produce `src`, and all of it is submitted together.
            let mut pending = self.pending.lock().expect("pending encoder poisoned");
            let encoder = pending.encoder.get_or_insert_with(|| {
                self.device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("tandem batch"),
                    })
            });
            encoder.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
            self.submit(&mut pending);
        }
        let (tx, rx) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            // The receiver outlives the poll below; a failed send cannot happen.
            let _ = tx.send(r);
        });
        self.device.poll(wgpu::PollType::wait_indefinitely())?;
        rx.recv().expect("map_async callback runs during poll")?;
        let bytes = staging.get_mapped_range(..)?.to_vec();
        staging.unmap();
        Ok(bytes)
    }
}

fn layout_entry(binding: u32, ty: wgpu::BufferBindingType) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}
