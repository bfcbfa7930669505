//! The sources of settings (file, environment, flags), where each value came
//! from, and the problems found while reading them.

use std::{
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{
    env::{Env, EnvFormat},
    error::ConfigError,
    model::Preset,
    schema::{self, Kind},
    units,
    yaml::{self, Node, NodeKind, Pos},
};

/// What a `*_TIMEOUT` variable of 0 ("no limit", per the spec) becomes:
/// the longest export timeout the config allows.
const NO_TIMEOUT: Duration = crate::resolve::MAX_TIMEOUT;

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// The default of the named preset.
    Preset(Preset),
    /// A config file, at a 1-based line and column.
    File {
        /// The file as given by the user.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The 1-based column.
        column: usize,
    },
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
}

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Works, but probably not as intended.
    Warning,
    /// The config cannot be used.
    Error,
}

/// One problem found in the config, with where it came from and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The dotted field path, e.g. `retry.max_retries`.
    pub path: String,
    /// Whether the config is unusable.
    pub severity: Severity,
    /// What is wrong, lower-case, with the offending value.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// Where the offending value came from.
    pub source: Source,
}

/// A value as a source wrote it, before typing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Raw {
    Text(String),
    Null,
    Map(Vec<(String, String)>),
    List(Vec<String>),
}

/// One key set by one source.
#[derive(Clone, Debug)]
pub(crate) struct Setting {
    pub(crate) raw: Raw,
    pub(crate) source: Source,
}

/// A parsed config file, with the position of every key.
#[derive(Clone, Debug)]
pub struct ConfigFile {
    path: PathBuf,
    text: String,
    root: Node,
}

/// Settings given on the command line, as `key = value` with the flag's name.
///
/// Keys are the dotted config keys (`endpoint`, `retry.max_retries`); values are
/// written as in YAML scalars, with `headers` as `k=v,k2=v2` and `endpoints`
/// comma-separated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    entries: Vec<(String, String, String)>,
}

// === impl Source ===

impl Source {
    /// `file`, `env`, `flag`, `preset` or `default`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::Preset(_) => "preset",
            Source::File { .. } => "file",
            Source::Env(_) => "env",
            Source::Flag(_) => "flag",
        }
    }

    fn file(path: &Path, pos: Pos) -> Self {
        Source::File {
            path: path.to_owned(),
            line: pos.line,
            column: pos.column,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Preset(p) => write!(f, "preset {p}"),
            Source::File { path, line, column } => {
                write!(f, "file {}:{line}:{column}", path.display())
            }
            Source::Env(name) => write!(f, "env {name}"),
            Source::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

// === impl Severity ===

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

// === impl Problem ===

impl Problem {
    pub(crate) fn error(
        path: impl Into<String>,
        source: &Source,
        message: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            severity: Severity::Error,
            message: message.into(),
            hint: None,
            source: source.clone(),
        }
    }

    pub(crate) fn warning(
        path: impl Into<String>,
        source: &Source,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(path, source, message)
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Where to point the user: `file:line:column`, `env NAME` or `flag NAME`;
    /// `None` for defaults.
    pub fn location(&self) -> Option<String> {
        match &self.source {
            Source::File { path, line, column } => {
                Some(format!("{}:{line}:{column}", path.display()))
            }
            Source::Env(n) => Some(format!("env {n}")),
            Source::Flag(n) => Some(format!("flag {n}")),
            Source::Default | Source::Preset(_) => None,
        }
    }
}

impl fmt::Display for Problem {
    /// `location: severity: path: message` and, when there is one, an indented `hint:` line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = self.location() {
            write!(f, "{loc}: ")?;
        }
        write!(
            f,
            "{}: {}: {}",
            self.severity.as_str(),
            self.path,
            self.message
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n    hint: {h}")?;
        }
        Ok(())
    }
}

// === impl ConfigFile ===

impl ConfigFile {
    /// Reads and parses the YAML file at `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] when the file cannot be read, [`ConfigError::Syntax`]
    /// (with line and column) when it is not YAML.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        if meta.len() > yaml::MAX_FILE_BYTES as u64 {
            return Err(ConfigError::Syntax {
                path: path.to_owned(),
                line: 1,
                column: 1,
                message: format!(
                    "file is {} bytes, more than the {} byte limit for a config file",
                    meta.len(),
                    yaml::MAX_FILE_BYTES
                ),
            });
        }
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let offset = e.utf8_error().valid_up_to();
            let before = &e.as_bytes()[..offset];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            ConfigError::Syntax {
                path: path.to_owned(),
                line,
                column: offset
                    - before
                        .iter()
                        .rposition(|b| *b == b'\n')
                        .map_or(0, |p| p + 1)
                    + 1,
                message: "the file is not UTF-8 text; save it as UTF-8".into(),
            }
        })?;
        Self::parse(path, text)
    }

    /// Parses `text` as the config file `path` (the path is used in messages
    /// and to resolve relative TLS and queue paths).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Syntax`] (with line and column) when `text` is not YAML.
    pub fn parse(path: impl AsRef<Path>, text: impl Into<String>) -> Result<Self, ConfigError> {
        let path = path.as_ref().to_owned();
        let text = text.into();
        let root = yaml::parse(&text).map_err(|e| ConfigError::Syntax {
            path: path.clone(),
            line: e.pos.line,
            column: e.pos.column,
            message: e.message,
        })?;
        Ok(Self { path, text, root })
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn root(&self) -> &Node {
        &self.root
    }

    /// Resolves a path written in the file against the file's directory.
    pub(crate) fn resolve_path(&self, p: &str) -> String {
        let written = Path::new(p);
        if written.is_absolute() {
            return p.to_owned();
        }
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(written).display().to_string(),
            _ => p.to_owned(),
        }
    }

    /// The settings of the file, in file order, and the problems reading them.
    pub(crate) fn settings(&self, out: &mut Vec<(String, Setting)>, problems: &mut Vec<Problem>) {
        match &self.root.kind {
            NodeKind::Null => {}
            NodeKind::Map(_) => self.walk("", &self.root, out, problems),
            _ => problems.push(
                Problem::error(
                    "(root)",
                    &Source::file(&self.path, self.root.pos),
                    format!(
                        "the file's top level is {}, not a mapping of keys",
                        self.root.type_name()
                    ),
                )
                .hint("start with keys such as `endpoint: http://localhost:4317`"),
            ),
        }
    }

    fn walk(
        &self,
        section: &str,
        node: &Node,
        out: &mut Vec<(String, Setting)>,
        problems: &mut Vec<Problem>,
    ) {
        let NodeKind::Map(entries) = &node.kind else {
            return;
        };
        let mut seen: Vec<&str> = Vec::new();
        for entry in entries {
            let path = schema::join(section, &entry.key);
            let key_src = Source::file(&self.path, entry.key_pos);
            let val_src = Source::file(&self.path, entry.value.pos);
            if seen.contains(&entry.key.as_str()) {
                problems.push(
                    Problem::error(
                        &path,
                        &key_src,
                        format!("key '{}' appears twice in the same mapping", entry.key),
                    )
                    .hint("keep one; the later value would silently win"),
                );
            }
            seen.push(&entry.key);
            if schema::is_section(&path) {
                match &entry.value.kind {
                    NodeKind::Map(_) => self.walk(&path, &entry.value, out, problems),
                    NodeKind::Null => {}
                    _ => problems.push(
                        Problem::error(
                            &path,
                            &val_src,
                            format!(
                                "'{path}' must be a mapping of keys, found {}",
                                entry.value.type_name()
                            ),
                        )
                        .hint(format!(
                            "indent its keys under `{}:`, e.g. {}",
                            entry.key,
                            example_child(&path)
                        )),
                    ),
                }
                continue;
            }
            let Some(def) = schema::lookup(&path) else {
                let mut p = Problem::error(&path, &key_src, format!("unknown key '{}'", entry.key));
                let collector_section = section.is_empty()
                    && matches!(
                        entry.key.as_str(),
                        "exporters" | "processors" | "service" | "extensions" | "connectors"
                    );
                let wrapped = match &entry.value.kind {
                    NodeKind::Map(inner) if section.is_empty() => inner
                        .iter()
                        .any(|e| schema::lookup(&e.key).is_some() || schema::is_section(&e.key)),
                    _ => false,
                };
                p = if collector_section {
                    p.hint(
                        "this looks like an OpenTelemetry Collector config; otlp-client has its own keys (endpoint, protocol, batch, queue, ...), see configs/full.yaml",
                    )
                } else if wrapped {
                    p.hint(format!(
                        "its keys belong at the top level: remove the '{}:' line and unindent the keys under it",
                        entry.key
                    ))
                } else {
                    p.hint(schema::key_hint(section, &entry.key))
                };
                problems.push(p);
                continue;
            };
            let raw = match (&entry.value.kind, def.kind) {
                (NodeKind::Null, _) => Raw::Null,
                (NodeKind::Scalar(s), Kind::Path) => Raw::Text(self.resolve_path(s)),
                (NodeKind::Scalar(s), Kind::Headers) => {
                    problems.push(
                        Problem::error(&path, &val_src, format!("'{path}' must be a mapping of header names to values, found the text '{s}'"))
                            .hint(format!("write one header per line under `{}:`, e.g. `  api-key: \"...\"`", entry.key)),
                    );
                    continue;
                }
                (NodeKind::Scalar(s), Kind::UrlList) => Raw::List(vec![s.clone()]),
                (NodeKind::Scalar(s), _) => Raw::Text(s.clone()),
                (NodeKind::Map(items), Kind::Headers) => {
                    let mut pairs = Vec::new();
                    for item in items {
                        match &item.value.kind {
                            NodeKind::Scalar(v) => pairs.push((item.key.clone(), v.clone())),
                            NodeKind::Null => pairs.push((item.key.clone(), String::new())),
                            _ => problems.push(Problem::error(
                                format!("{path}.{}", item.key),
                                &Source::file(&self.path, item.value.pos),
                                format!(
                                    "header '{}' must have a text value, found {}",
                                    item.key,
                                    item.value.type_name()
                                ),
                            )),
                        }
                    }
                    Raw::Map(pairs)
                }
                (NodeKind::Seq(items), Kind::UrlList) => {
                    let mut urls = Vec::new();
                    for item in items {
                        match &item.kind {
                            NodeKind::Scalar(v) => urls.push(v.clone()),
                            _ => problems.push(Problem::error(
                                &path,
                                &Source::file(&self.path, item.pos),
                                format!(
                                    "each entry of 'endpoints' must be a URL, found {}",
                                    item.type_name()
                                ),
                            )),
                        }
                    }
                    Raw::List(urls)
                }
                (_, _) => {
                    problems.push(
                        Problem::error(
                            &path,
                            &val_src,
                            format!(
                                "'{path}' takes a single value, found {}",
                                entry.value.type_name()
                            ),
                        )
                        .hint(format!(
                            "write it as `{}: <value>` ({})",
                            entry.key, def.doc
                        )),
                    );
                    continue;
                }
            };
            out.push((
                path,
                Setting {
                    raw,
                    source: val_src,
                },
            ));
        }
    }
}

fn example_child(section: &str) -> String {
    let first = schema::children(section)
        .into_iter()
        .next()
        .unwrap_or("key");
    format!("`  {first}: ...`")
}

// === impl Flags ===

impl Flags {
    /// No flags.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` (a dotted config key) to `value`, shown as `--set key=value` in explanations.
    pub fn set(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        let flag = format!("--set {key}");
        self.with_flag(flag, key, value)
    }

    /// Sets `key` to `value` from the flag named `flag` (e.g. `--endpoint`).
    pub fn with_flag(
        mut self,
        flag: impl Into<String>,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.entries.push((flag.into(), key.into(), value.into()));
        self
    }

    /// Whether no flag is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn settings(&self, out: &mut Vec<(String, Setting)>, problems: &mut Vec<Problem>) {
        for (flag, key, value) in &self.entries {
            let source = Source::Flag(flag.clone());
            let Some(def) = schema::lookup(key) else {
                let section = key.rsplit_once('.').map_or("", |(s, _)| s);
                let name = key.rsplit('.').next().unwrap_or(key);
                let mut p =
                    Problem::error(key.as_str(), &source, format!("unknown config key '{key}'"));
                if schema::suggest_key(section, name).is_some() {
                    p = p.hint(schema::key_hint(section, name));
                }
                problems.push(p);
                continue;
            };
            let raw = match def.kind {
                Kind::Headers => {
                    let (pairs, errors) = units::parse_header_list(value);
                    for e in errors {
                        problems.push(Problem::error(key.as_str(), &source, e));
                    }
                    Raw::Map(pairs)
                }
                Kind::UrlList => Raw::List(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                ),
                _ => Raw::Text(value.clone()),
            };
            out.push((key.clone(), Setting { raw, source }));
        }
    }
}

/// The settings of the environment, in application order (short forms first).
pub(crate) fn env_settings(
    env: &Env,
    out: &mut Vec<(String, Setting)>,
    problems: &mut Vec<Problem>,
) {
    let table = crate::env::table();
    for (name, key, format) in &table {
        let Some(value) = env.get(name) else { continue };
        let source = Source::Env(name.clone());
        let value = value.trim();
        let raw = match format {
            EnvFormat::Plain => Raw::Text(value.to_owned()),
            EnvFormat::Lower => Raw::Text(value.to_ascii_lowercase()),
            // Per the SDK spec a malformed entry is skipped with a warning
            // and the other entries apply.
            EnvFormat::Attributes => {
                let (pairs, errors) = units::parse_header_list(value);
                for e in errors {
                    let e = e.replace("header entry", "resource attribute entry");
                    problems.push(
                        Problem::warning(key.as_str(), &source, format!("{e}; the entry is ignored"))
                            .hint("write key=value pairs separated by ',', with ',', '=' and '%' in values percent-encoded (%2C, %3D, %25)"),
                    );
                }
                Raw::Map(pairs)
            }
            EnvFormat::Bool => match value.to_ascii_lowercase().as_str() {
                "true" => Raw::Text("true".into()),
                "false" => Raw::Text("false".into()),
                _ => {
                    problems.push(
                        Problem::error(
                            key.as_str(),
                            &source,
                            format!("{name}='{value}' is not a boolean"),
                        )
                        .hint("use true or false"),
                    );
                    continue;
                }
            },
            // Per the OpenTelemetry spec a timeout variable of 0 means no
            // limit, and an invalid one is a warning, the default applying.
            EnvFormat::Millis | EnvFormat::Seconds => {
                let millis = matches!(format, EnvFormat::Millis);
                let parsed = match value.parse::<u64>() {
                    Ok(0) => Some(Duration::ZERO),
                    Ok(n) if millis => Some(Duration::from_millis(n)),
                    Ok(n) => Some(Duration::from_secs(n)),
                    Err(_) if !millis => units::parse_duration(value).ok(),
                    Err(_) => None,
                };
                match parsed {
                    Some(d) if d.is_zero() => {
                        problems.push(
                            Problem::warning(
                                key.as_str(),
                                &source,
                                format!(
                                    "{name}=0 means no timeout; taken as the longest allowed, {}",
                                    units::format_duration(NO_TIMEOUT)
                                ),
                            )
                            .hint("set a timeout to bound how long one export may hang"),
                        );
                        Raw::Text(units::format_duration(NO_TIMEOUT))
                    }
                    Some(d) => Raw::Text(format!("{}ms", d.as_millis())),
                    None => {
                        let unit = if millis {
                            "milliseconds, e.g. 10000 for 10s"
                        } else {
                            "seconds, e.g. 10"
                        };
                        problems.push(
                            Problem::warning(
                                key.as_str(),
                                &source,
                                format!("{name}='{value}' is not a timeout; it is ignored and the default applies"),
                            )
                            .hint(format!("give a whole number of {unit}, or 0 for no timeout")),
                        );
                        continue;
                    }
                }
            }
            EnvFormat::Headers => {
                let (pairs, errors) = units::parse_header_list(value);
                for e in errors {
                    problems.push(Problem::error(key.as_str(), &source, e));
                }
                Raw::Map(pairs)
            }
        };
        out.push((key.clone(), Setting { raw, source }));
    }
    // Unknown OTLP exporter variables are most often typos of known ones.
    let known: Vec<&str> = table.iter().map(|(n, _, _)| n.as_str()).collect();
    for (name, _) in env.iter() {
        if (name.starts_with("OTEL_EXPORTER_OTLP_") || name.starts_with("OTLP_"))
            && !known.contains(&name)
            && !crate::env::READ_ELSEWHERE.contains(&name)
        {
            let mut p = Problem::warning(
                name,
                &Source::Env(name.to_owned()),
                format!("unknown variable {name} is ignored"),
            );
            let best = known
                .iter()
                .map(|k| (strsim::damerau_levenshtein(name, k), *k))
                .min();
            if let Some((_, k)) = best.filter(|(d, _)| *d <= 3) {
                p = p.hint(format!("did you mean {k}?"));
            }
            problems.push(p);
        }
    }
}
