//! rsync signatures for plugins (WIT `rsync`): librsync's MD4 signature of a
//! stream, computed natively (fast_rsync hashes several blocks at once with
//! SIMD) and, for large files, on a thread of its own so the plugin goes on
//! writing while the host hashes.

use crate::bindings::PluginError;
use crate::bindings::sink::orchestrator::plugin::rsync as wit;
use crate::state::PluginState;
use fast_rsync::{Signature, SignatureOptions};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;
use wasmtime::component::Resource;

/// Bytes hashed inline before a file earns its own thread: small files are
/// the common case, and a thread per file would cost more than hashing it.
const INLINE: usize = 1 << 20;
/// Chunks queued to the hashing thread.
const QUEUE: usize = 4;
/// Length of the signature header (magic, block length, strong length).
const HEADER: usize = 12;

/// The signature of a stream, block by block; memory is one block plus the
/// signature itself.
struct SignatureState {
    options: SignatureOptions,
    pending: Vec<u8>,
    out: Vec<u8>,
}

impl SignatureState {
    fn new(options: SignatureOptions) -> SignatureState {
        let out = Signature::calculate(&[], options).into_serialized();
        SignatureState { options, pending: Vec::new(), out }
    }

    fn push_blocks(&mut self, data: &[u8]) {
        let sig = Signature::calculate(data, self.options).into_serialized();
        self.out.extend_from_slice(&sig[HEADER..]);
    }

    fn update(&mut self, mut data: &[u8]) {
        let block = self.options.block_size as usize;
        if !self.pending.is_empty() {
            let take = (block - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() < block {
                return;
            }
            let full = std::mem::take(&mut self.pending);
            self.push_blocks(&full);
        }
        // Whole blocks in one call, so they are hashed several at a time.
        let whole = data.len() / block * block;
        if whole > 0 {
            self.push_blocks(&data[..whole]);
        }
        self.pending.extend_from_slice(&data[whole..]);
    }

    fn finish(mut self) -> Vec<u8> {
        if !self.pending.is_empty() {
            let last = std::mem::take(&mut self.pending);
            self.push_blocks(&last);
        }
        self.out
    }
}

/// Where the hashing happens: inline until the stream is large.
enum Work {
    Inline(SignatureState),
    Thread { tx: SyncSender<Vec<u8>>, worker: JoinHandle<Vec<u8>> },
    Done,
}

/// One signature being computed for a plugin.
pub struct Signer {
    work: Work,
    seen: usize,
}

impl Signer {
    /// A signer with `block_len`-byte blocks and `strong_len`-byte MD4 sums.
    pub fn new(block_len: u32, strong_len: u32) -> Result<Signer, PluginError> {
        if block_len == 0 || !(1..=16).contains(&strong_len) {
            return Err(PluginError::Config(format!(
                "an rsync signature needs a block length of at least 1 and a strong sum of 1 to 16 bytes, \
                 not {block_len} and {strong_len}"
            )));
        }
        let options = SignatureOptions { block_size: block_len, crypto_hash_size: strong_len };
        Ok(Signer { work: Work::Inline(SignatureState::new(options)), seen: 0 })
    }

    /// Feed the next bytes.
    pub fn update(&mut self, data: Vec<u8>) -> Result<(), PluginError> {
        self.seen += data.len();
        if self.seen > INLINE
            && let Work::Inline(_) = self.work
        {
            let Work::Inline(mut state) = std::mem::replace(&mut self.work, Work::Done) else { unreachable!() };
            let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
            let worker = std::thread::Builder::new()
                .name("rsync-signer".into())
                .spawn(move || {
                    while let Ok(chunk) = rx.recv() {
                        state.update(&chunk);
                    }
                    state.finish()
                })
                .map_err(|e| PluginError::Io(format!("cannot start a hashing thread: {e}")))?;
            self.work = Work::Thread { tx, worker };
        }
        match &mut self.work {
            Work::Inline(state) => state.update(&data),
            Work::Thread { tx, .. } => {
                tx.send(data).map_err(|_| PluginError::Other("the rsync hashing thread stopped".into()))?
            }
            Work::Done => return Err(PluginError::Other("the signer is finished".into())),
        }
        Ok(())
    }

    /// The complete signature; the signer is used up.
    pub fn finish(&mut self) -> Result<Vec<u8>, PluginError> {
        match std::mem::replace(&mut self.work, Work::Done) {
            Work::Inline(state) => Ok(state.finish()),
            Work::Thread { tx, worker } => {
                drop(tx);
                worker.join().map_err(|_| PluginError::Other("the rsync hashing thread panicked".into()))
            }
            Work::Done => Err(PluginError::Other("the signer is finished".into())),
        }
    }
}

impl wit::Host for PluginState {
    async fn create_signer(
        &mut self,
        block_len: u32,
        strong_len: u32,
    ) -> wasmtime::Result<Result<Resource<Signer>, PluginError>> {
        match Signer::new(block_len, strong_len) {
            Ok(s) => Ok(Ok(self.table.push(s)?)),
            Err(e) => Ok(Err(e)),
        }
    }
}

impl wit::HostSigner for PluginState {
    async fn update(&mut self, this: Resource<Signer>, data: Vec<u8>) -> wasmtime::Result<Result<(), PluginError>> {
        Ok(self.table.get_mut(&this)?.update(data))
    }

    async fn finish(&mut self, this: Resource<Signer>) -> wasmtime::Result<Result<Vec<u8>, PluginError>> {
        Ok(self.table.get_mut(&this)?.finish())
    }

    async fn drop(&mut self, this: Resource<Signer>) -> wasmtime::Result<()> {
        // An unfinished signer's thread ends when its queue closes.
        self.table.delete(this)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer_output(data: &[u8], chunk: usize, block: u32) -> Vec<u8> {
        let mut s = Signer::new(block, 8).unwrap();
        for c in data.chunks(chunk.max(1)) {
            s.update(c.to_vec()).unwrap();
        }
        s.finish().unwrap()
    }

    #[test]
    fn equals_the_one_shot_signature_inline_and_threaded() {
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        for block in [512, 2048, 2237] {
            let expected = Signature::calculate(&data, SignatureOptions { block_size: block, crypto_hash_size: 8 })
                .into_serialized();
            // 100 KiB stays inline; the 5 MB stream moves to a thread.
            let small = &data[..100_000];
            let small_expected =
                Signature::calculate(small, SignatureOptions { block_size: block, crypto_hash_size: 8 })
                    .into_serialized();
            assert_eq!(signer_output(small, 777, block), small_expected);
            for chunk in [1000, 65_536, 4 << 20] {
                assert_eq!(signer_output(&data, chunk, block), expected, "block {block} chunk {chunk}");
            }
        }
        assert_eq!(
            signer_output(&[], 10, 512),
            Signature::calculate(&[], SignatureOptions { block_size: 512, crypto_hash_size: 8 }).into_serialized()
        );
    }

    #[test]
    fn bad_options_and_reuse_are_errors() {
        assert!(matches!(Signer::new(0, 8), Err(PluginError::Config(_))));
        assert!(matches!(Signer::new(512, 17), Err(PluginError::Config(_))));
        let mut s = Signer::new(512, 8).unwrap();
        s.finish().unwrap();
        assert!(s.finish().is_err());
        assert!(s.update(vec![1]).is_err());
    }
}
