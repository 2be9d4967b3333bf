//! The sink side: the traits a sink plugin implements and the glue that
//! exports them as the `sink` interface.

use crate::bindings::sink::exports::orchestrator::plugin::sink as wit;
use crate::{
    BackupContext, BackupSet, ContentStatus, Entry, PluginError, PluginInfo, ReadRequest, SourceStatus, VerifyReport,
    Want, parse_config,
};
use serde::de::DeserializeOwned;
use std::cell::RefCell;

/// A sink plugin.
pub trait Sink: 'static {
    /// The plugin's configuration, without the host's keys (`plugin`,
    /// `target`, `inputs`, `allow`, `limits`).
    type Config: DeserializeOwned;
    /// A backup in progress.
    type Backup: Backup;
    /// Stored entries being read back.
    type Reader: Reader;

    /// Name, version and description.
    fn info() -> PluginInfo;
    /// Check the configuration and say what the plugin needs from the host.
    fn validate(config: &Self::Config) -> Result<Vec<Want>, PluginError>;
    /// Start a backup of one source.
    fn begin_backup(config: Self::Config, context: BackupContext) -> Result<Self::Backup, PluginError>;
    /// Open what is stored for a source, for restore or list.
    fn open_reader(config: Self::Config, request: ReadRequest) -> Result<Self::Reader, PluginError>;
    /// The chains and sets stored for a source.
    fn status(config: Self::Config, source: &str) -> Result<SourceStatus, PluginError>;
    /// Check the integrity of what is stored for a source.
    fn verify(config: Self::Config, source: &str) -> Result<VerifyReport, PluginError>;
    /// Apply retention; return the names of removed objects.
    fn prune(_config: Self::Config, _source: &str) -> Result<Vec<String>, PluginError> {
        Ok(Vec::new())
    }
}

/// A backup of one source in progress.
pub trait Backup: 'static {
    /// The next entry; return whether its content is wanted.
    fn add(&mut self, entry: Entry) -> Result<bool, PluginError>;
    /// The next chunk of the current entry's content.
    fn write(&mut self, data: &[u8]) -> Result<(), PluginError>;
    /// The current entry's content is complete, or could not be read.
    fn end_entry(&mut self, status: ContentStatus) -> Result<(), PluginError>;
    /// Make the set durable and visible.
    fn finish(self: Box<Self>) -> Result<BackupSet, PluginError>;
}

/// Stored entries of one source at one time.
pub trait Reader: 'static {
    /// The next entry in path order; `None` at the end.
    fn next(&mut self) -> Result<Option<Entry>, PluginError>;
    /// Up to `max` further bytes of the last regular file `next` returned.
    fn read(&mut self, max: usize) -> Result<Vec<u8>, PluginError>;
}

/// Glue between a [`Sink`] and the generated bindings; used by
/// [`export_sink!`](crate::export_sink).
#[doc(hidden)]
pub trait SinkShim {
    type Plugin: Sink;
}

fn config<T: SinkShim>(json: &str) -> Result<<T::Plugin as Sink>::Config, PluginError> {
    parse_config(json)
}

impl<T: SinkShim> wit::Guest for T {
    type Backup = BackupAdapter;
    type Reader = ReaderAdapter;

    fn info() -> PluginInfo {
        T::Plugin::info()
    }
    fn validate(json: String) -> Result<Vec<Want>, PluginError> {
        T::Plugin::validate(&config::<T>(&json)?)
    }
    fn begin_backup(json: String, context: BackupContext) -> Result<wit::Backup, PluginError> {
        let backup = T::Plugin::begin_backup(config::<T>(&json)?, context)?;
        Ok(wit::Backup::new(BackupAdapter(RefCell::new(Some(Box::new(backup))))))
    }
    fn open_reader(json: String, request: ReadRequest) -> Result<wit::Reader, PluginError> {
        let reader = T::Plugin::open_reader(config::<T>(&json)?, request)?;
        Ok(wit::Reader::new(ReaderAdapter(RefCell::new(Box::new(reader)))))
    }
    fn status(json: String, source: String) -> Result<SourceStatus, PluginError> {
        T::Plugin::status(config::<T>(&json)?, &source)
    }
    fn verify(json: String, source: String) -> Result<VerifyReport, PluginError> {
        T::Plugin::verify(config::<T>(&json)?, &source)
    }
    fn prune(json: String, source: String) -> Result<Vec<String>, PluginError> {
        T::Plugin::prune(config::<T>(&json)?, &source)
    }
}

#[doc(hidden)]
pub struct BackupAdapter(RefCell<Option<Box<dyn Backup>>>);

impl BackupAdapter {
    fn with<R>(&self, f: impl FnOnce(&mut dyn Backup) -> Result<R, PluginError>) -> Result<R, PluginError> {
        match self.0.borrow_mut().as_mut() {
            Some(b) => f(&mut **b),
            None => Err(PluginError::Other("the backup was already finished".into())),
        }
    }
}

impl wit::GuestBackup for BackupAdapter {
    fn add(&self, entry: Entry) -> Result<bool, PluginError> {
        self.with(|b| b.add(entry))
    }
    fn write(&self, data: Vec<u8>) -> Result<(), PluginError> {
        self.with(|b| b.write(&data))
    }
    fn end_entry(&self, status: ContentStatus) -> Result<(), PluginError> {
        self.with(|b| b.end_entry(status))
    }
    fn finish(&self) -> Result<BackupSet, PluginError> {
        match self.0.borrow_mut().take() {
            Some(b) => b.finish(),
            None => Err(PluginError::Other("the backup was already finished".into())),
        }
    }
}

#[doc(hidden)]
pub struct ReaderAdapter(RefCell<Box<dyn Reader>>);

impl wit::GuestReader for ReaderAdapter {
    fn next(&self) -> Result<Option<Entry>, PluginError> {
        self.0.borrow_mut().next()
    }
    fn read(&self, max: u32) -> Result<Vec<u8>, PluginError> {
        self.0.borrow_mut().read((max as usize).min(crate::MAX_CHUNK))
    }
}

/// Export a [`Sink`] implementation as this component's `sink` interface.
/// Call it once, at the crate root of a `cdylib` built for `wasm32-wasip2`.
#[macro_export]
macro_rules! export_sink {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __OrchestratorSinkExport;
        impl $crate::__private::SinkShim for __OrchestratorSinkExport {
            type Plugin = $plugin;
        }
        $crate::bindings::sink::export_sink_world!(
            __OrchestratorSinkExport with_types_in $crate::bindings::sink
        );
    };
}
