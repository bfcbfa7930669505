//! The unit that flows through otlp-rust: an encoded OTLP export request.

use std::{
    ops::Range,
    sync::{Arc, OnceLock},
};

use bytes::{Bytes, BytesMut};

use crate::{
    DecodeError, JoinError, Payload, Signal, Split,
    wire::{Field, Fields, len_field_size, message, put_len_header},
};

/// An encoded OTLP export request of one signal, with its item count.
///
/// The bytes are a complete `Export{Trace,Metrics,Logs}ServiceRequest` in
/// protobuf encoding. They are encoded once, where the data is made or
/// received, and then flow unchanged: retries resend a cheap clone, the disk
/// queue stores them as they are, gRPC sends them through a pass-through codec.
///
/// Protobuf merge semantics make two encoded requests of the same type
/// concatenate into one valid request, so [`Batch::join`] appends bytes.
///
/// # Example
///
/// ```
/// use bytes::Bytes;
/// use otlp_core::{Batch, Signal};
///
/// // An ExportTraceServiceRequest with one resource, one scope and one empty span.
/// let encoded = Bytes::from_static(&[0x0a, 0x04, 0x12, 0x02, 0x12, 0x00]);
/// let batch = Batch::from_encoded(Signal::Traces, encoded)?;
/// assert_eq!(batch.items(), 1);
///
/// let joined = batch.join(&batch)?;
/// assert_eq!(joined.items(), 2);
/// assert_eq!(joined.byte_size(), 12);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    signal: Signal,
    bytes: Bytes,
    items: u64,
    /// The request as sent on the wire (compressed, or re-encoded as JSON),
    /// made by the first attempt and shared by every clone of this batch, so
    /// that retries resend it instead of compressing again.
    wire: WireForm,
}

/// A batch's bytes in their wire form, made once and shared by its clones.
#[derive(Clone, Debug, Default)]
struct WireForm(Arc<OnceLock<(&'static str, Bytes)>>);

impl PartialEq for WireForm {
    /// A cache: two batches with the same request are equal whatever it holds.
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for WireForm {}

/// One indivisible unit of a request when splitting: a span, a log record,
/// or a whole metric (with all its data points).
#[derive(Debug)]
struct Unit<'a> {
    raw: &'a [u8],
    items: u64,
}

#[derive(Debug)]
struct Scope<'a> {
    header: Vec<&'a [u8]>,
    units: Vec<Unit<'a>>,
}

#[derive(Debug)]
struct Resource<'a> {
    header: Vec<&'a [u8]>,
    scopes: Vec<Scope<'a>>,
}

#[derive(Debug)]
struct Parsed<'a> {
    other: Vec<&'a [u8]>,
    resources: Vec<Resource<'a>>,
}

// === impl Batch ===

impl Batch {
    /// Wraps encoded bytes whose item count the caller already knows (for
    /// example because it encoded them).
    ///
    /// Use [`Batch::from_encoded`] for bytes from elsewhere.
    pub fn new(signal: Signal, bytes: Bytes, items: u64) -> Self {
        Self {
            signal,
            bytes,
            items,
            wire: WireForm::default(),
        }
    }

    /// The request in a wire form named `form` (such as `"gzip"`), made by
    /// `make` from the encoded bytes on the first call and kept for every
    /// later call on this batch or any clone of it: a retry resends the
    /// compressed bytes of the first attempt instead of compressing again.
    ///
    /// One form is kept per batch (an exporter uses one); a call naming
    /// another form runs `make` without keeping its result.
    ///
    /// # Errors
    ///
    /// What `make` returns.
    pub fn wire_form<E>(
        &self,
        form: &'static str,
        make: impl FnOnce(&Bytes) -> Result<Bytes, E>,
    ) -> Result<Bytes, E> {
        if let Some((kept, bytes)) = self.wire.0.get() {
            if *kept == form {
                return Ok(bytes.clone());
            }
            return make(&self.bytes);
        }
        let made = make(&self.bytes)?;
        // Two attempts racing: the first one kept wins, both are valid.
        let _ = self.wire.0.set((form, made.clone()));
        Ok(made)
    }

    /// This batch, holding `bytes` as its wire form `form` (unless it holds
    /// one already): a relay forwards a request received compressed as it
    /// came, when it goes upstream alone with the same compression, instead
    /// of compressing it again. `bytes` must be this request in that form.
    pub fn with_wire_form(self, form: &'static str, bytes: Bytes) -> Self {
        let _ = self.wire.0.set((form, bytes));
        self
    }

    /// Whether this batch holds its request in the wire form `form` already.
    pub fn has_wire_form(&self, form: &str) -> bool {
        self.wire.0.get().is_some_and(|(kept, _)| *kept == form)
    }

    /// An empty request of `signal` (zero bytes is a valid, empty request).
    pub fn empty(signal: Signal) -> Self {
        Self::new(signal, Bytes::new(), 0)
    }

    /// Wraps encoded bytes from elsewhere, counting their items by walking the
    /// wire format (no full decode).
    ///
    /// # Errors
    ///
    /// Returns [`DecodeError`] when the resource / scope / item structure is
    /// not well-formed protobuf.
    pub fn from_encoded(signal: Signal, bytes: Bytes) -> Result<Self, DecodeError> {
        let items = count_items(signal, &bytes)?;
        Ok(Self::new(signal, bytes, items))
    }

    /// Wraps a request received from a sender, after validating it against
    /// the OTLP schema ([`validate`](crate::validate)): the agent's receivers
    /// call this so that one bad request never reaches a joined batch. The
    /// library's own batches, encoded by this workspace, use
    /// [`Batch::from_encoded`] or [`Batch::new`] and do not pay for it.
    ///
    /// # Errors
    ///
    /// [`InvalidRequest`](crate::InvalidRequest) naming the offending field.
    pub fn from_received(signal: Signal, bytes: Bytes) -> Result<Self, crate::InvalidRequest> {
        let items = crate::validate(signal, &bytes)?;
        Ok(Self::new(signal, bytes, items))
    }

    /// The signal of the request.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// The encoded request.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Consumes the batch, returning the encoded request.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The number of spans, metric data points or log records.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// The encoded size in bytes.
    pub fn byte_size(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the request carries no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Joins two requests of one signal into one by appending their bytes.
    ///
    /// # Errors
    ///
    /// Returns [`JoinError`] when the signals differ, or when both are
    /// non-empty profiles requests (see [`Signal::joins_by_concatenation`]).
    pub fn join(&self, other: &Batch) -> Result<Batch, JoinError> {
        Batch::concat(self.signal, [self, other])
    }

    /// Joins many requests of `signal` into one, copying each byte once.
    ///
    /// # Errors
    ///
    /// Returns [`JoinError`] when any batch is of another signal, or when
    /// more than one is a non-empty request of a signal whose requests do not
    /// join by appending bytes (profiles, whose dictionaries would merge).
    pub fn concat<'a>(
        signal: Signal,
        batches: impl IntoIterator<Item = &'a Batch> + Clone,
    ) -> Result<Batch, JoinError> {
        let mut len = 0;
        let mut items = 0;
        let mut non_empty = 0;
        for b in batches.clone() {
            if b.signal != signal {
                return Err(JoinError {
                    left: signal,
                    right: b.signal,
                });
            }
            non_empty += usize::from(!b.bytes.is_empty());
            if non_empty > 1 && !signal.joins_by_concatenation() {
                return Err(JoinError {
                    left: signal,
                    right: signal,
                });
            }
            len += b.bytes.len();
            items += b.items;
        }
        let mut out = BytesMut::with_capacity(len);
        for b in batches {
            out.extend_from_slice(&b.bytes);
        }
        Ok(Batch::new(signal, out.freeze(), items))
    }

    /// Cuts the request, in one pass, into parts of at most `max_items` items
    /// and about `max_bytes` bytes each, keeping every resource and scope
    /// header with its items (a unit larger than the limits travels alone).
    ///
    /// Unlike repeated [`try_split`](Self::try_split) halving, this touches
    /// each byte once and holds no per-item table, so a request of ten
    /// million spans costs one copy of its bytes. A request that already fits
    /// is returned as it is (no copy).
    ///
    /// # Errors
    ///
    /// [`DecodeError`] when the bytes are malformed.
    pub fn split_to_fit(
        &self,
        max_items: u64,
        max_bytes: usize,
    ) -> Result<Vec<Batch>, DecodeError> {
        let max_items = max_items.max(1);
        if self.items <= max_items && self.bytes.len() <= max_bytes {
            return Ok(vec![self.clone()]);
        }
        // Top-level fields other than resources go with the first part, or
        // with every part when the signal's items refer to them (the
        // profiles dictionary).
        let shared = shared_fields(self.signal, &self.bytes)?;
        let mut parts = Parts {
            signal: self.signal,
            max_items,
            max_bytes,
            done: Vec::new(),
            out: shared.clone(),
            shared,
            items: 0,
            resource: Vec::new(),
            scope: Vec::new(),
            resource_items: false,
            scope_items: false,
        };
        for resource in Fields::new(&self.bytes) {
            let resource = resource?;
            if resource.number != 1 {
                if self.signal.joins_by_concatenation() {
                    parts.out.extend_from_slice(resource.raw);
                }
                continue;
            }
            let body = message(&resource)?;
            let header = headers(body)?;
            parts.open_resource(&header);
            for scope in Fields::new(body) {
                let scope = scope?;
                if scope.number != 2 {
                    continue;
                }
                let scope_body = message(&scope)?;
                let scope_header = headers(scope_body)?;
                parts.open_scope(&scope_header);
                for item in Fields::new(scope_body) {
                    let item = item?;
                    if item.number == 2 {
                        let n = unit_items(self.signal, &item)?;
                        parts.unit(item.raw, n, &header, &scope_header);
                    }
                }
                parts.close_scope();
            }
            parts.close_resource();
        }
        Ok(parts.finish())
    }

    /// Splits the request into two requests carrying about half the items
    /// each, keeping every resource and scope with its items.
    ///
    /// The smallest unit is one span, one log record, or one metric with all
    /// its data points.
    ///
    /// # Errors
    ///
    /// Returns `Ok(None)` when there is only one unit left, and
    /// [`DecodeError`] when the bytes are malformed.
    pub fn try_split(&self) -> Result<Option<(Batch, Batch)>, DecodeError> {
        let parsed = parse(self.signal, &self.bytes)?;
        let units: Vec<u64> = parsed
            .resources
            .iter()
            .flat_map(|r| r.scopes.iter())
            .flat_map(|s| s.units.iter().map(|u| u.items))
            .collect();
        if units.len() < 2 {
            return Ok(None);
        }
        let total: u64 = units.iter().sum();
        // The left half ends after the first unit that brings it to half the items,
        // but always leaves at least one unit for the right half.
        let mut cut = units.len() / 2;
        if total > 0 {
            let mut acc = 0;
            for (i, n) in units.iter().enumerate() {
                acc += n;
                if acc * 2 >= total {
                    cut = i + 1;
                    break;
                }
            }
        }
        let cut = cut.clamp(1, units.len() - 1);
        // Profiles' items index into the top-level dictionary: both halves carry it.
        let shared = !self.signal.joins_by_concatenation();
        let left = encode_part(&parsed, 0..cut, true, true);
        let right = encode_part(&parsed, cut..units.len(), false, shared);
        Ok(Some((
            Batch::new(self.signal, left.0, left.1),
            Batch::new(self.signal, right.0, right.1),
        )))
    }
}

impl Payload for Batch {
    fn items(&self) -> u64 {
        self.items
    }

    fn byte_size(&self) -> usize {
        self.bytes.len()
    }

    fn label(&self) -> &'static str {
        self.signal.as_str()
    }
}

impl Split for Batch {
    /// Malformed bytes cannot be split; they are sent (and refused) whole.
    fn split(&self) -> Option<(Self, Self)> {
        self.try_split().ok().flatten()
    }
}

/// Counts the items of an encoded export request without decoding it.
///
/// Spans for traces, log records for logs, data points for metrics and
/// profiles for profiles (the units OTLP partial success counts in).
///
/// # Errors
///
/// Returns [`DecodeError`] when the walked structure is malformed.
pub fn count_items(signal: Signal, buf: &[u8]) -> Result<u64, DecodeError> {
    let mut n = 0;
    for resource in Fields::new(buf) {
        let resource = resource?;
        if resource.number != 1 {
            continue;
        }
        for scope in Fields::new(message(&resource)?) {
            let scope = scope?;
            if scope.number != 2 {
                continue;
            }
            for item in Fields::new(message(&scope)?) {
                let item = item?;
                if item.number == 2 {
                    n += unit_items(signal, &item)?;
                }
            }
        }
    }
    Ok(n)
}

/// The top-level fields other than resources that every part of a split
/// request must carry: for profiles, the dictionary (field 2) its profiles
/// index into; nothing for the other signals, whose parts are independent.
fn shared_fields(signal: Signal, buf: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    if signal.joins_by_concatenation() {
        return Ok(out);
    }
    for f in Fields::new(buf) {
        let f = f?;
        if f.number != 1 {
            out.extend_from_slice(f.raw);
        }
    }
    Ok(out)
}

/// The fields of a message other than field 2 (the repeated children), raw.
fn headers(body: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    let mut out = Vec::new();
    for f in Fields::new(body) {
        let f = f?;
        if f.number != 2 {
            out.push(f.raw);
        }
    }
    Ok(out)
}

/// The parts [`Batch::split_to_fit`] builds: the finished ones, and the one
/// being filled (its finished resources in `out`, the open resource's
/// headers and finished scopes in `resource`, the open scope in `scope`).
struct Parts {
    signal: Signal,
    max_items: u64,
    max_bytes: usize,
    done: Vec<Batch>,
    out: Vec<u8>,
    /// What every part starts with ([`shared_fields`]).
    shared: Vec<u8>,
    items: u64,
    resource: Vec<u8>,
    scope: Vec<u8>,
    /// Whether the open resource / scope holds items of the current part.
    resource_items: bool,
    scope_items: bool,
}

impl Parts {
    fn open_resource(&mut self, header: &[&[u8]]) {
        self.resource.clear();
        for raw in header {
            self.resource.extend_from_slice(raw);
        }
    }

    fn open_scope(&mut self, header: &[&[u8]]) {
        self.scope.clear();
        for raw in header {
            self.scope.extend_from_slice(raw);
        }
    }

    fn close_scope(&mut self) {
        self.resource_items |= self.scope_items;
        self.scope_items = false;
        put_len_header(&mut self.resource, 2, self.scope.len());
        self.resource.extend_from_slice(&self.scope);
        self.scope.clear();
    }

    fn close_resource(&mut self) {
        self.resource_items = false;
        put_len_header(&mut self.out, 1, self.resource.len());
        self.out.extend_from_slice(&self.resource);
        self.resource.clear();
    }

    fn len(&self) -> usize {
        // Length prefixes of the open scope and resource: at most 2 x 6 bytes.
        self.out.len() + self.resource.len() + self.scope.len() + 12
    }

    /// Adds one unit, first finishing the part when the unit would overflow it.
    fn unit(&mut self, raw: &[u8], items: u64, resource: &[&[u8]], scope: &[&[u8]]) {
        if self.items > 0
            && (self.items + items > self.max_items || self.len() + raw.len() > self.max_bytes)
        {
            // The open scope and resource go with the part only if they hold
            // some of its items; they are opened again for the next part.
            if self.scope_items {
                self.close_scope();
            }
            if self.resource_items || self.scope_items {
                self.close_resource();
            }
            let bytes = Bytes::from(std::mem::replace(&mut self.out, self.shared.clone()));
            self.done.push(Batch::new(
                self.signal,
                bytes,
                std::mem::take(&mut self.items),
            ));
            self.open_resource(resource);
            self.open_scope(scope);
        }
        self.scope.extend_from_slice(raw);
        self.items += items;
        self.scope_items = true;
    }

    fn finish(mut self) -> Vec<Batch> {
        if !self.out.is_empty() || self.items > 0 {
            let bytes = Bytes::from(std::mem::take(&mut self.out));
            self.done.push(Batch::new(self.signal, bytes, self.items));
        }
        self.done
    }
}

/// The items in one unit: 1 for a span or log record, the data points of a metric.
fn unit_items(signal: Signal, item: &Field<'_>) -> Result<u64, DecodeError> {
    let body = message(item)?;
    match signal {
        Signal::Traces | Signal::Logs | Signal::Profiles => Ok(1),
        Signal::Metrics => {
            let mut n = 0;
            for data in Fields::new(body) {
                let data = data?;
                // gauge = 5, sum = 7, histogram = 9, exponential_histogram = 10, summary = 11;
                // each holds its data points in field 1.
                if matches!(data.number, 5 | 7 | 9 | 10 | 11) {
                    for point in Fields::new(message(&data)?) {
                        let point = point?;
                        if point.number == 1 {
                            message(&point)?;
                            n += 1;
                        }
                    }
                }
            }
            Ok(n)
        }
    }
}

fn parse(signal: Signal, buf: &[u8]) -> Result<Parsed<'_>, DecodeError> {
    let mut parsed = Parsed {
        other: Vec::new(),
        resources: Vec::new(),
    };
    for resource in Fields::new(buf) {
        let resource = resource?;
        if resource.number != 1 {
            parsed.other.push(resource.raw);
            continue;
        }
        let mut r = Resource {
            header: Vec::new(),
            scopes: Vec::new(),
        };
        for scope in Fields::new(message(&resource)?) {
            let scope = scope?;
            if scope.number != 2 {
                r.header.push(scope.raw);
                continue;
            }
            let mut s = Scope {
                header: Vec::new(),
                units: Vec::new(),
            };
            for item in Fields::new(message(&scope)?) {
                let item = item?;
                if item.number == 2 {
                    s.units.push(Unit {
                        raw: item.raw,
                        items: unit_items(signal, &item)?,
                    });
                } else {
                    s.header.push(item.raw);
                }
            }
            r.scopes.push(s);
        }
        parsed.resources.push(r);
    }
    Ok(parsed)
}

/// Encodes the units whose flat index is in `range`, each inside its own
/// resource and scope headers. Entries without units travel with the first
/// part so nothing is lost; top-level fields other than resources too, or
/// with this part as well when `other` says so (the profiles dictionary).
fn encode_part(parsed: &Parsed<'_>, range: Range<usize>, first: bool, other: bool) -> (Bytes, u64) {
    let mut out = Vec::new();
    let mut items = 0;
    let mut idx = 0;
    if other {
        for raw in &parsed.other {
            out.extend_from_slice(raw);
        }
    }
    for r in &parsed.resources {
        let mut body = Vec::new();
        for raw in &r.header {
            body.extend_from_slice(raw);
        }
        let mut any = first && r.scopes.iter().all(|s| s.units.is_empty());
        for s in &r.scopes {
            let mut scope_body = Vec::new();
            for raw in &s.header {
                scope_body.extend_from_slice(raw);
            }
            let mut scope_any = first && s.units.is_empty();
            for u in &s.units {
                if range.contains(&idx) {
                    scope_body.extend_from_slice(u.raw);
                    items += u.items;
                    scope_any = true;
                }
                idx += 1;
            }
            if scope_any {
                body.reserve(len_field_size(2, scope_body.len()));
                put_len_header(&mut body, 2, scope_body.len());
                body.extend_from_slice(&scope_body);
                any = true;
            }
        }
        if any {
            put_len_header(&mut out, 1, body.len());
            out.extend_from_slice(&body);
        }
    }
    (Bytes::from(out), items)
}

mod route;

pub use route::{RouteKey, RouteSplit};

#[cfg(test)]
pub(crate) mod profiles_tests;
#[cfg(test)]
mod tests;
