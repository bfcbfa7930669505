//! Splitting a request by routing key, for load balancing across backends.
//!
//! [`Batch::split_by_route`] walks the request once (no decode into structs)
//! and hands each unit's routing key to a caller's function that names the
//! part (backend) it goes to. Every unit is written under a copy of its own
//! resource and scope headers, so each part is a valid request of the same
//! signal, and the parts together hold every unit exactly once.

use bytes::Bytes;

use std::ops::Range;

use super::{Batch, unit_items};
use crate::{
    DecodeError, Signal,
    wire::{Fields, len_field_size, message, put_len_header},
};

/// What a request is split on when it is load balanced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RouteKey {
    /// Spans by their trace id, so every span of a trace goes to one backend;
    /// log records by their trace id when they have one, else by resource;
    /// metrics and profiles (which have no trace id of their own) by service.
    TraceId,
    /// By the resource's `service.name` attribute (the whole resource when it
    /// has none).
    Service,
    /// By the whole encoded resource (its attributes and dropped count).
    Resource,
}

impl RouteKey {
    /// Every key, spelled as the config spells it.
    pub const VALUES: [&'static str; 3] = ["trace_id", "service", "resource"];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKey::TraceId => "trace_id",
            RouteKey::Service => "service",
            RouteKey::Resource => "resource",
        }
    }
}

/// One part being built: its finished resources in `out`; for the open
/// resource, the scopes it holds units of and those units' byte ranges in
/// the request. Units are copied once, when the resource closes and every
/// length prefix is known.
#[derive(Default)]
struct Part {
    out: Vec<u8>,
    scopes: Vec<OpenScope>,
    ranges: Vec<Range<usize>>,
    items: u64,
}

/// A scope of the open resource in one part.
struct OpenScope {
    /// Its index among the open resource's scopes ([`ScopeHeader`]s).
    scope: usize,
    /// Its first unit range in [`Part::ranges`].
    first_range: usize,
    /// The bytes of its units in this part.
    bytes: usize,
}

/// A scope's header fields (every field but its units) and their size.
#[derive(Default)]
struct ScopeHeader<'a> {
    fields: Vec<&'a [u8]>,
    len: usize,
}

impl Part {
    /// Adds the unit at `range` of the request, of scope `scope`.
    fn push(&mut self, scope: usize, range: Range<usize>, items: u64) {
        self.items += items;
        let len = range.len();
        match self.scopes.last_mut() {
            Some(open) if open.scope == scope => {
                open.bytes += len;
                // Units next to each other in the request are copied as one.
                if open.first_range < self.ranges.len()
                    && let Some(last) = self.ranges.last_mut()
                    && last.end == range.start
                {
                    last.end = range.end;
                    return;
                }
            }
            _ => self.scopes.push(OpenScope {
                scope,
                first_range: self.ranges.len(),
                bytes: len,
            }),
        }
        self.ranges.push(range);
    }

    /// Takes a scope with no units at all (it goes with its resource's part).
    fn push_empty(&mut self, scope: usize) {
        if self.scopes.last().is_none_or(|open| open.scope != scope) {
            self.scopes.push(OpenScope {
                scope,
                first_range: self.ranges.len(),
                bytes: 0,
            });
        }
    }

    /// Writes the open resource (`header`, then its scopes in this part with
    /// their units) to `out`, sized exactly first. A unit range outside
    /// `request` (never: each is a slice of it) is an error, not a part whose
    /// length prefixes would disagree with its bytes.
    fn close_resource(
        &mut self,
        request: &[u8],
        header: &ScopeHeader<'_>,
        scopes: &[ScopeHeader<'_>],
    ) -> Result<(), DecodeError> {
        let scope_len = |open: &OpenScope| scopes.get(open.scope).map_or(0, |h| h.len) + open.bytes;
        let body = header.len
            + self
                .scopes
                .iter()
                .map(|open| len_field_size(2, scope_len(open)))
                .sum::<usize>();
        self.out.reserve(len_field_size(1, body));
        put_len_header(&mut self.out, 1, body);
        for field in &header.fields {
            self.out.extend_from_slice(field);
        }
        for (k, open) in self.scopes.iter().enumerate() {
            put_len_header(&mut self.out, 2, scope_len(open));
            if let Some(h) = scopes.get(open.scope) {
                for field in &h.fields {
                    self.out.extend_from_slice(field);
                }
            }
            let end = self
                .scopes
                .get(k + 1)
                .map_or(self.ranges.len(), |next| next.first_range);
            for range in self.ranges.get(open.first_range..end).unwrap_or_default() {
                let unit = request.get(range.clone()).ok_or(DecodeError::Truncated {
                    offset: range.start,
                })?;
                self.out.extend_from_slice(unit);
            }
        }
        self.scopes.clear();
        self.ranges.clear();
        Ok(())
    }
}

/// What [`Batch::split_by_route`] makes: the parts by index, and the units
/// no part was found for.
#[derive(Clone, Debug, Default)]
pub struct RouteSplit {
    /// The non-empty parts with their index, in index order.
    pub parts: Vec<(usize, Batch)>,
    /// The units `route` named no part for (`None`), as one request of the
    /// same signal under their own headers; `None` when there are none.
    pub leftover: Option<Batch>,
}

impl Batch {
    /// Splits the request into at most `parts` requests, sending each unit
    /// (span, log record, or whole metric) to the part `route` names for its
    /// routing key (the key bytes: a trace id, a `service.name` value or an
    /// encoded resource). A name of `parts` or more wraps around; a unit
    /// `route` names no part for (`None`, e.g. no backend left) goes to the
    /// [`leftover`](RouteSplit::leftover).
    ///
    /// Each unit is written under a copy of its original resource and scope
    /// headers (every field but the repeated children), so each part decodes
    /// to the same resources and scopes as the original. A resource or scope
    /// without units goes with the part its resource routes to; top-level
    /// fields other than resources go with part 0, except for profiles, where
    /// every part carries them (the dictionary its profiles index into).
    /// When everything goes to one part (or to the leftover), that is this
    /// batch itself (no copy).
    ///
    /// # Errors
    ///
    /// [`DecodeError`] when the bytes are malformed; nothing is returned then.
    pub fn split_by_route(
        &self,
        key: RouteKey,
        parts: usize,
        mut route: impl FnMut(&[u8]) -> Option<usize>,
    ) -> Result<RouteSplit, DecodeError> {
        let parts = parts.max(1);
        // Slot `parts` is the leftover.
        let mut out: Vec<Part> = (0..=parts).map(|_| Part::default()).collect();
        let mut pick = |k: &[u8]| route(k).map_or(parts, |i| i % parts);
        let mut shared = Vec::new();
        // Where a unit is in the request: its slice's offset from the start.
        let base = self.bytes.as_ptr() as usize;
        let range_of = |raw: &[u8]| {
            let start = (raw.as_ptr() as usize).wrapping_sub(base);
            start..start + raw.len()
        };
        let mut scopes: Vec<ScopeHeader<'_>> = Vec::new();
        for resource in Fields::new(&self.bytes) {
            let resource = resource?;
            if resource.number != 1 {
                if self.signal.joins_by_concatenation() {
                    out[0].out.extend_from_slice(resource.raw);
                } else {
                    shared.extend_from_slice(resource.raw);
                }
                continue;
            }
            let body = message(&resource)?;
            let resource_key = resource_key(body, key, self.signal)?;
            let resource_part = pick(resource_key);
            let mut header = ScopeHeader::default();
            scopes.clear();
            for scope in Fields::new(body) {
                let scope = scope?;
                if scope.number != 2 {
                    header.fields.push(scope.raw);
                    header.len += scope.raw.len();
                    continue;
                }
                let s = scopes.len();
                let mut scope_header = ScopeHeader::default();
                let mut any = false;
                for item in Fields::new(message(&scope)?) {
                    let item = item?;
                    if item.number != 2 {
                        scope_header.fields.push(item.raw);
                        scope_header.len += item.raw.len();
                        continue;
                    }
                    let n = unit_items(self.signal, &item)?;
                    let idx = match unit_trace_id(self.signal, key, message(&item)?)? {
                        Some(trace_id) => pick(trace_id),
                        None => resource_part,
                    };
                    out[idx].push(s, range_of(item.raw), n);
                    any = true;
                }
                if !any {
                    out[resource_part].push_empty(s);
                }
                scopes.push(scope_header);
            }
            // A resource with no scope goes with its part, as its header.
            let none_used = out.iter().all(|p| p.scopes.is_empty());
            for (i, p) in out.iter_mut().enumerate() {
                if !p.scopes.is_empty() || (none_used && i == resource_part) {
                    p.close_resource(&self.bytes, &header, &scopes)?;
                }
            }
        }
        if !shared.is_empty() {
            let none_used = out.iter().all(|p| p.out.is_empty());
            for (i, p) in out.iter_mut().enumerate() {
                if !p.out.is_empty() || (none_used && i == 0) {
                    p.out.extend_from_slice(&shared);
                }
            }
        }
        let mut used: Vec<(usize, Part)> = out
            .into_iter()
            .enumerate()
            .filter(|(_, p)| !p.out.is_empty())
            .collect();
        if let [(i, _)] = used.as_slice() {
            // Everything goes to one part: the request as it is, no copy (and
            // any wire form it holds, such as the compressed form it came in).
            let i = *i;
            return Ok(if i == parts {
                RouteSplit {
                    parts: Vec::new(),
                    leftover: Some(self.clone()),
                }
            } else {
                RouteSplit {
                    parts: vec![(i, self.clone())],
                    leftover: None,
                }
            });
        }
        let batch = |p: Part| Batch::new(self.signal, Bytes::from(p.out), p.items);
        let leftover = match used.last() {
            Some((i, _)) if *i == parts => used.pop().map(|(_, p)| batch(p)),
            _ => None,
        };
        Ok(RouteSplit {
            parts: used.into_iter().map(|(i, p)| (i, batch(p))).collect(),
            leftover,
        })
    }
}

/// The trace id a unit routes by, when the key and signal route units by
/// trace id and the unit has one (spans: field 1; log records: field 9).
fn unit_trace_id(signal: Signal, key: RouteKey, body: &[u8]) -> Result<Option<&[u8]>, DecodeError> {
    let field = match (key, signal) {
        (RouteKey::TraceId, Signal::Traces) => 1,
        (RouteKey::TraceId, Signal::Logs) => 9,
        _ => return Ok(None),
    };
    for f in Fields::new(body) {
        let f = f?;
        if f.number == field && f.is_len {
            // An empty trace id (a log record outside any trace) routes by resource.
            return Ok((!f.payload.is_empty()).then_some(f.payload));
        }
    }
    Ok(None)
}

/// The key a resource entry routes by: its `service.name` value or its whole
/// encoded `Resource` (field 1 of `Resource{Spans,Logs,Metrics}`).
fn resource_key(body: &[u8], key: RouteKey, signal: Signal) -> Result<&[u8], DecodeError> {
    let mut resource: &[u8] = &[];
    for f in Fields::new(body) {
        let f = f?;
        if f.number == 1 {
            resource = message(&f)?;
        }
    }
    let by_service = match key {
        RouteKey::Service => true,
        // Metrics and profiles have no trace id; log records without one
        // follow their resource.
        RouteKey::TraceId => matches!(signal, Signal::Metrics | Signal::Profiles),
        RouteKey::Resource => false,
    };
    if by_service && let Some(service) = service_name(resource)? {
        return Ok(service);
    }
    Ok(resource)
}

/// The string value of the `service.name` attribute of an encoded `Resource`.
fn service_name(resource: &[u8]) -> Result<Option<&[u8]>, DecodeError> {
    for attr in Fields::new(resource) {
        let attr = attr?;
        if attr.number != 1 || !attr.is_len {
            continue;
        }
        let mut name: &[u8] = &[];
        let mut value: Option<&[u8]> = None;
        for f in Fields::new(attr.payload) {
            let f = f?;
            match (f.number, f.is_len) {
                (1, true) => name = f.payload,
                (2, true) => value = Some(f.payload),
                _ => {}
            }
        }
        if name != b"service.name" {
            continue;
        }
        let Some(value) = value else { continue };
        for f in Fields::new(value) {
            let f = f?;
            if f.number == 1 && f.is_len {
                return Ok(Some(f.payload));
            }
        }
    }
    Ok(None)
}
