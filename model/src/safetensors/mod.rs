//! safetensors reader (memory-mapped) and writer, and sharded checkpoints
//! (`model.safetensors.index.json`), as Hugging Face `transformers` saves them.

mod parse;
mod write;

use crate::error::{format_err, ModelError, Result};
use crate::file_bytes::FileBytes;
use half::{bf16, f16};
use lamina_tensor::{DType, Element, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub use parse::{parse, Header, SafeDtype, SafeTensorInfo};
pub use write::{to_bytes, write_safetensors};

/// One parsed safetensors file.
pub struct SafeTensors {
    header: Header,
    by_name: HashMap<String, usize>,
    bytes: FileBytes,
}

impl SafeTensors {
    /// Open and parse `path` (memory-mapped).
    pub fn open(path: impl AsRef<Path>) -> Result<SafeTensors> {
        Self::new(FileBytes::map(path.as_ref())?)
    }

    /// Parse a safetensors image held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<SafeTensors> {
        Self::new(FileBytes::Owned(bytes))
    }

    fn new(bytes: FileBytes) -> Result<SafeTensors> {
        let header = parse(&bytes)?;
        let by_name = header.tensors.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        Ok(SafeTensors { header, by_name, bytes })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The `__metadata__` map (empty when absent).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.header.metadata
    }

    /// Tensor names in the order of their data.
    pub fn names(&self) -> Vec<&str> {
        self.header.tensors.iter().map(|t| t.name.as_str()).collect()
    }

    /// All tensors in the order of their data.
    pub fn tensors(&self) -> &[SafeTensorInfo] {
        &self.header.tensors
    }

    pub fn tensor_info(&self, name: &str) -> Option<&SafeTensorInfo> {
        self.by_name.get(name).map(|&i| &self.header.tensors[i])
    }

    pub fn file_size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The raw little-endian bytes of a tensor.
    pub fn tensor_bytes(&self, info: &SafeTensorInfo) -> &[u8] {
        // Bounds were checked at parse time.
        let start = (self.header.data_offset + info.begin) as usize;
        &self.bytes[start..start + info.n_bytes() as usize]
    }

    /// Tensor `name` as `dtype`, in the shape stored. F32, F16 and BF16 are supported.
    pub fn load(&self, name: &str, dtype: DType) -> Result<Tensor> {
        let info = self.tensor_info(name).ok_or_else(|| missing(name))?;
        let bytes = self.tensor_bytes(info);
        let t = match info.dtype {
            SafeDtype::F32 => from_le(bytes, &info.shape, f32::from_le_bytes)?,
            SafeDtype::F16 => from_le(bytes, &info.shape, |b| f16::from_bits(u16::from_le_bytes(b)))?,
            SafeDtype::BF16 => from_le(bytes, &info.shape, |b| bf16::from_bits(u16::from_le_bytes(b)))?,
            other => {
                return Err(ModelError::Unsupported(format!(
                    "safetensors tensor `{name}` has dtype {other}; this build loads F32, F16 and BF16"
                )))
            }
        };
        Ok(if t.dtype() == dtype { t } else { t.to_dtype(dtype)? })
    }
}

fn missing(name: &str) -> ModelError {
    ModelError::Missing(format!("tensor `{name}` is not in the checkpoint"))
}

fn from_le<T: Element, const N: usize>(bytes: &[u8], shape: &[usize], f: impl Fn([u8; N]) -> T) -> Result<Tensor> {
    // The data section need not be aligned for T, so values are read byte-wise.
    let v: Vec<T> = bytes.chunks_exact(N).map(|c| f(c.try_into().expect("N bytes"))).collect();
    Ok(Tensor::from_vec(v, shape)?)
}

/// A checkpoint in one or more safetensors files: a single `.safetensors` file, a
/// `model.safetensors.index.json` (shards named by its `weight_map`), or a directory
/// holding either.
pub struct SafeTensorsSet {
    /// The files, in the order opened.
    pub files: Vec<PathBuf>,
    shards: Vec<SafeTensors>,
    by_name: HashMap<String, usize>,
}

/// The file name of a sharded checkpoint's index.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

impl SafeTensorsSet {
    pub fn open(path: impl AsRef<Path>) -> Result<SafeTensorsSet> {
        let path = path.as_ref();
        if path.is_dir() {
            let single = path.join("model.safetensors");
            let index = path.join(INDEX_FILE);
            return match (single.is_file(), index.is_file()) {
                (true, _) => Self::open(single),
                (false, true) => Self::open(index),
                _ => Err(ModelError::Missing(format!(
                    "{}: neither model.safetensors nor {INDEX_FILE} is there",
                    path.display()
                ))),
            };
        }
        if path.to_string_lossy().ends_with(".json") {
            return Self::open_index(path);
        }
        let shard = SafeTensors::open(path)?;
        let by_name = shard.names().into_iter().map(|n| (n.to_string(), 0)).collect();
        Ok(SafeTensorsSet { files: vec![path.to_path_buf()], shards: vec![shard], by_name })
    }

    fn open_index(path: &Path) -> Result<SafeTensorsSet> {
        #[derive(serde::Deserialize)]
        struct Index {
            weight_map: BTreeMap<String, String>,
        }
        let index: Index = crate::hf::read_json(path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut set = SafeTensorsSet { files: vec![], shards: vec![], by_name: HashMap::new() };
        let mut file_ids = HashMap::new();
        for (name, file) in &index.weight_map {
            let plain = Path::new(file).file_name().is_some_and(|f| f == file.as_str());
            if !plain {
                return Err(format_err(
                    "safetensors index",
                    format!("shard `{file}` is not a file name in {}", dir.display()),
                ));
            }
            let id = match file_ids.get(file) {
                Some(&id) => id,
                None => {
                    let shard = SafeTensors::open(dir.join(file))?;
                    for n in shard.names() {
                        if set.by_name.insert(n.to_string(), set.shards.len()).is_some() {
                            return Err(format_err("safetensors index", format!("tensor `{n}` is in two shards")));
                        }
                    }
                    set.files.push(dir.join(file));
                    set.shards.push(shard);
                    file_ids.insert(file.clone(), set.shards.len() - 1);
                    set.shards.len() - 1
                }
            };
            if set.by_name.get(name) != Some(&id) {
                return Err(format_err("safetensors index", format!("tensor `{name}` is not in its shard `{file}`")));
            }
        }
        Ok(set)
    }

    pub fn shards(&self) -> &[SafeTensors] {
        &self.shards
    }

    /// Every tensor, shard by shard in the order of their data.
    pub fn tensors(&self) -> impl Iterator<Item = &SafeTensorInfo> {
        self.shards.iter().flat_map(|s| s.tensors())
    }

    pub fn tensor_info(&self, name: &str) -> Option<&SafeTensorInfo> {
        self.by_name.get(name).and_then(|&i| self.shards[i].tensor_info(name))
    }

    pub fn load(&self, name: &str, dtype: DType) -> Result<Tensor> {
        let &i = self.by_name.get(name).ok_or_else(|| missing(name))?;
        self.shards[i].load(name, dtype)
    }

    /// A tensor's header entry and raw little-endian bytes, from whichever shard holds it.
    pub fn tensor_bytes(&self, name: &str) -> Option<(&SafeTensorInfo, &[u8])> {
        let shard = &self.shards[*self.by_name.get(name)?];
        let info = shard.tensor_info(name)?;
        Some((info, shard.tensor_bytes(info)))
    }
}
