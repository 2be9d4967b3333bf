//! Configuration errors: file, line, column, key, and a sentence.

use std::path::PathBuf;

/// One problem in a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file as given.
    pub file: PathBuf,
    /// 1-based line; 0 when the file could not be read at all.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Dotted key (`sources.docs.limits.memory_mb`), when there is one.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        match &self.key {
            Some(k) => write!(f, ": {k}: {}", self.message),
            None => write!(f, ": {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for e in &self.0 {
            writeln!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(line: usize, key: Option<&str>) -> ConfigError {
        ConfigError { file: "p.toml".into(), line, column: 3, key: key.map(Into::into), message: "bad".into() }
    }

    #[test]
    fn display_leaves_out_what_is_unknown() {
        assert_eq!(error(2, Some("pipeline.name")).to_string(), "p.toml:2:3: pipeline.name: bad");
        assert_eq!(error(2, None).to_string(), "p.toml:2:3: bad");
        assert_eq!(error(0, None).to_string(), "p.toml: bad");
        let all = ConfigErrors(vec![error(1, None), error(0, None)]);
        assert_eq!(all.to_string(), "p.toml:1:3: bad\np.toml: bad\n");
    }
}
