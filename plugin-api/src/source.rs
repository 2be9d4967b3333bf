//! The source side: the traits a source plugin implements and the glue that
//! exports them as the `source` interface.

use crate::bindings::source::exports::orchestrator::plugin::source as wit;
use crate::{Entry, Outcome, PluginError, PluginInfo, RunContext, Want, fill_chunk, parse_config};
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::io::Read;

/// A source plugin.
pub trait Source: 'static {
    /// The plugin's configuration: its table in the pipeline file, without the
    /// host's keys. Use `#[serde(deny_unknown_fields)]` so typos are errors.
    type Config: DeserializeOwned;
    /// One run's state.
    type Session: Session;

    /// Name, version and description (see [`plugin_info!`](crate::plugin_info)).
    fn info() -> PluginInfo;

    /// Check the configuration beyond its types and say what the plugin needs
    /// from the host for it. Must not touch any server or file.
    fn validate(config: &Self::Config) -> Result<Vec<Want>, PluginError>;

    /// Start a run.
    fn open(config: Self::Config, context: RunContext) -> Result<Self::Session, PluginError>;

    /// Start writing restored entries back into `target` (`restore --to URL`).
    fn open_writer(_config: Self::Config, _target: &str) -> Result<Box<dyn SourceWriter>, PluginError> {
        Err(PluginError::Unsupported(format!(
            "the {} plugin cannot restore into a URL; restore into a directory instead",
            Self::info().name
        )))
    }
}

/// One run of a source.
pub trait Session: 'static {
    /// Up to `max` further entries in duplicity order (depth first, children
    /// sorted bytewise, the root first); empty at the end.
    fn next(&mut self, max: usize) -> Result<Vec<Entry>, PluginError>;

    /// The content of a regular file this session yielded.
    fn open(&mut self, path: &[u8]) -> Result<Box<dyn Read>, PluginError>;

    /// The same content as the host reads it, chunk by chunk. The default
    /// fills each chunk from [`Session::open`]'s reader; a session whose
    /// files are the host's (`fs::File`, `sftp::RemoteFile`) returns
    /// [`Content::Chunks`], which hands the host's own chunks back without
    /// zeroing and copying each into a buffer inside the plugin.
    fn open_content(&mut self, path: &[u8]) -> Result<Content, PluginError> {
        self.open(path).map(Content::Reader)
    }

    /// Release what the run holds; called once, whatever the outcome.
    fn finish(&mut self, _outcome: Outcome) -> Result<(), PluginError> {
        Ok(())
    }
}

/// A reader that hands over whole chunks it already holds, as the host's
/// files do: each is what the host returned, up to `max` bytes, and empty
/// at the end.
pub trait ReadChunk {
    /// The next chunk of at most `max` bytes; empty at the end.
    fn read_chunk(&mut self, max: usize) -> Result<Vec<u8>, PluginError>;
}

/// The content of a regular file, as [`Session::open_content`] gives it.
pub enum Content {
    /// Any reader: each chunk is filled from it.
    Reader(Box<dyn Read>),
    /// A reader of whole chunks (see [`ReadChunk`]).
    Chunks(Box<dyn ReadChunk>),
}

impl Content {
    fn read_chunk(&mut self, max: usize) -> Result<Vec<u8>, PluginError> {
        match self {
            Content::Reader(r) => fill_chunk(&mut **r, max),
            Content::Chunks(c) => c.read_chunk(max),
        }
    }
}

/// Writes restored entries back into the place a source reads from.
pub trait SourceWriter: 'static {
    /// The next entry; return whether its content is wanted.
    fn add(&mut self, entry: Entry) -> Result<bool, PluginError>;
    /// The next chunk of the current entry's content.
    fn write(&mut self, data: &[u8]) -> Result<(), PluginError>;
    /// The current entry's content is complete.
    fn end_entry(&mut self) -> Result<(), PluginError>;
    /// Every entry was given; a one-line summary for people.
    fn finish(&mut self) -> Result<String, PluginError>;
}

/// Glue between a [`Source`] and the generated bindings; used by
/// [`export_source!`](crate::export_source).
#[doc(hidden)]
pub trait SourceShim {
    type Plugin: Source;
}

impl<T: SourceShim> wit::Guest for T {
    type Session = SessionAdapter;
    type Content = ContentAdapter;
    type Writer = WriterAdapter;

    fn info() -> PluginInfo {
        T::Plugin::info()
    }

    fn validate(config: String) -> Result<Vec<Want>, PluginError> {
        let config = parse_config::<<T::Plugin as Source>::Config>(&config)?;
        T::Plugin::validate(&config)
    }

    fn open(config: String, context: RunContext) -> Result<wit::Session, PluginError> {
        let config = parse_config::<<T::Plugin as Source>::Config>(&config)?;
        let session = T::Plugin::open(config, context)?;
        Ok(wit::Session::new(SessionAdapter(RefCell::new(Box::new(session)))))
    }

    fn open_writer(config: String, target: String) -> Result<wit::Writer, PluginError> {
        let config = parse_config::<<T::Plugin as Source>::Config>(&config)?;
        let writer = T::Plugin::open_writer(config, &target)?;
        Ok(wit::Writer::new(WriterAdapter(RefCell::new(writer))))
    }
}

#[doc(hidden)]
pub struct SessionAdapter(RefCell<Box<dyn Session>>);

impl wit::GuestSession for SessionAdapter {
    fn next(&self, max: u32) -> Result<Vec<Entry>, PluginError> {
        self.0.borrow_mut().next(max as usize)
    }

    fn open(&self, path: Vec<u8>) -> Result<wit::Content, PluginError> {
        let content = self.0.borrow_mut().open_content(&path)?;
        Ok(wit::Content::new(ContentAdapter(RefCell::new(content))))
    }

    fn finish(&self, outcome: Outcome) -> Result<(), PluginError> {
        self.0.borrow_mut().finish(outcome)
    }
}

#[doc(hidden)]
pub struct ContentAdapter(RefCell<Content>);

impl wit::GuestContent for ContentAdapter {
    fn read(&self, max: u32) -> Result<Vec<u8>, PluginError> {
        self.0.borrow_mut().read_chunk((max as usize).min(crate::MAX_CHUNK))
    }
}

#[doc(hidden)]
pub struct WriterAdapter(RefCell<Box<dyn SourceWriter>>);

impl wit::GuestWriter for WriterAdapter {
    fn add(&self, entry: Entry) -> Result<bool, PluginError> {
        self.0.borrow_mut().add(entry)
    }
    fn write(&self, data: Vec<u8>) -> Result<(), PluginError> {
        self.0.borrow_mut().write(&data)
    }
    fn end_entry(&self) -> Result<(), PluginError> {
        self.0.borrow_mut().end_entry()
    }
    fn finish(&self) -> Result<String, PluginError> {
        self.0.borrow_mut().finish()
    }
}

/// Export a [`Source`] implementation as this component's `source` interface.
/// Call it once, at the crate root of a `cdylib` built for `wasm32-wasip2`.
#[macro_export]
macro_rules! export_source {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __OrchestratorSourceExport;
        impl $crate::__private::SourceShim for __OrchestratorSourceExport {
            type Plugin = $plugin;
        }
        $crate::bindings::source::export_source_world!(
            __OrchestratorSourceExport with_types_in $crate::bindings::source
        );
    };
}
