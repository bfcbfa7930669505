//! Tests of counting, splitting, routing and joining profiles requests,
//! built with the real OTLP profiles types (`opentelemetry-proto`, feature
//! `profiles`).

use bytes::Bytes;
use opentelemetry_proto::tonic::{
    collector::profiles::v1development::ExportProfilesServiceRequest,
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value},
    profiles::v1development::{
        Function, Line, Location, Profile, ProfilesDictionary, ResourceProfiles, Sample,
        ScopeProfiles, Stack, ValueType,
    },
    resource::v1::Resource,
};
use prost::Message;

use super::*;

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![KeyValue {
            key: "service.name".to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(service.to_owned())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn profile(i: u8) -> Profile {
    Profile {
        sample_type: Some(ValueType {
            type_strindex: 1,
            unit_strindex: 2,
        }),
        samples: vec![Sample {
            stack_index: 1,
            values: vec![i64::from(i) * 10],
            timestamps_unix_nano: vec![1_700_000_000_000_000_000],
            ..Default::default()
        }],
        time_unix_nano: 1_700_000_000_000_000_000,
        duration_nano: 1_000_000_000,
        period: 10_000_000,
        profile_id: vec![i; 16],
        attribute_indices: vec![0],
        ..Default::default()
    }
}

/// A dictionary the profiles index into (string 1 = "samples", ...).
fn dictionary() -> ProfilesDictionary {
    ProfilesDictionary {
        string_table: ["", "samples", "count", "main", "main.rs"]
            .map(str::to_owned)
            .to_vec(),
        function_table: vec![
            Function::default(),
            Function {
                name_strindex: 3,
                filename_strindex: 4,
                ..Default::default()
            },
        ],
        location_table: vec![
            Location::default(),
            Location {
                address: 0x1000,
                lines: vec![Line {
                    function_index: 1,
                    line: 7,
                    column: 0,
                }],
                ..Default::default()
            },
        ],
        stack_table: vec![
            Stack::default(),
            Stack {
                location_indices: vec![1],
            },
        ],
        ..Default::default()
    }
}

/// A profiles request with `shape[r][s]` profiles in scope `s` of resource `r`.
pub(crate) fn profiles(shape: &[Vec<usize>]) -> ExportProfilesServiceRequest {
    let mut n = 0u8;
    ExportProfilesServiceRequest {
        resource_profiles: shape
            .iter()
            .enumerate()
            .map(|(r, scopes)| ResourceProfiles {
                resource: resource(&format!("svc-{r}")),
                scope_profiles: scopes
                    .iter()
                    .map(|&k| ScopeProfiles {
                        scope: Some(InstrumentationScope {
                            name: "profiler".to_owned(),
                            ..Default::default()
                        }),
                        profiles: (0..k)
                            .map(|_| {
                                n = n.wrapping_add(1);
                                profile(n)
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        dictionary: Some(dictionary()),
    }
}

fn batch(req: &ExportProfilesServiceRequest) -> Batch {
    Batch::from_encoded(Signal::Profiles, Bytes::from(req.encode_to_vec())).unwrap()
}

fn decode(b: &Batch) -> ExportProfilesServiceRequest {
    ExportProfilesServiceRequest::decode(b.bytes().as_ref()).unwrap()
}

fn ids(reqs: &[ExportProfilesServiceRequest]) -> Vec<Vec<u8>> {
    reqs.iter()
        .flat_map(|r| &r.resource_profiles)
        .flat_map(|r| &r.scope_profiles)
        .flat_map(|s| &s.profiles)
        .map(|p| p.profile_id.clone())
        .collect()
}

#[test]
fn the_wire_counter_counts_profiles_and_skips_the_dictionary() {
    let req = profiles(&[vec![2, 1], vec![3]]);
    let bytes = req.encode_to_vec();
    assert_eq!(count_items(Signal::Profiles, &bytes), Ok(6));
    assert_eq!(crate::validate(Signal::Profiles, &bytes), Ok(6));
    // The dictionary alone holds no profiles.
    let only_dictionary = ExportProfilesServiceRequest {
        resource_profiles: vec![],
        dictionary: Some(dictionary()),
    };
    assert_eq!(
        count_items(Signal::Profiles, &only_dictionary.encode_to_vec()),
        Ok(0)
    );
}

#[test]
fn every_part_of_a_split_carries_the_dictionary() {
    let req = profiles(&[vec![2, 1], vec![3]]);
    let b = batch(&req);
    let parts = b.split_to_fit(2, usize::MAX).unwrap();
    assert_eq!(parts.len(), 3);
    let decoded: Vec<_> = parts.iter().map(decode).collect();
    for (p, d) in parts.iter().zip(&decoded) {
        assert_eq!(p.items(), 2);
        assert_eq!(d.dictionary, req.dictionary, "each part indexes into it");
    }
    assert_eq!(ids(&decoded), ids(std::slice::from_ref(&req)));

    let (left, right) = b.try_split().unwrap().unwrap();
    assert_eq!(left.items() + right.items(), 6);
    assert_eq!(decode(&left).dictionary, req.dictionary);
    assert_eq!(decode(&right).dictionary, req.dictionary);
}

#[test]
fn every_routed_part_carries_the_dictionary() {
    let req = profiles(&[vec![2], vec![1], vec![3]]);
    let b = batch(&req);
    // Each resource's service.name goes to its own part.
    let parts = b
        .split_by_route(RouteKey::TraceId, 3, |k| match k {
            b"svc-0" => Some(0),
            b"svc-1" => Some(1),
            _ => Some(2),
        })
        .unwrap();
    assert!(parts.leftover.is_none());
    let parts = parts.parts;
    assert_eq!(parts.len(), 3);
    let decoded: Vec<_> = parts.iter().map(|(_, p)| decode(p)).collect();
    for d in &decoded {
        assert_eq!(d.dictionary, req.dictionary);
        assert_eq!(d.resource_profiles.len(), 1);
    }
    assert_eq!(
        parts.iter().map(|(_, p)| p.items()).collect::<Vec<_>>(),
        [2, 1, 3]
    );
}

#[test]
fn two_profiles_requests_are_not_joined_by_appending_bytes() {
    let a = batch(&profiles(&[vec![1]]));
    let e = a.join(&a).unwrap_err();
    assert_eq!((e.left, e.right), (Signal::Profiles, Signal::Profiles));
    assert!(e.to_string().contains("dictionary"), "{e}");
    // An empty request joins with anything.
    assert_eq!(a.join(&Batch::empty(Signal::Profiles)).unwrap(), a);
}

#[test]
fn invalid_profiles_are_refused_with_the_field_path() {
    let mut req = profiles(&[vec![1]]);
    req.resource_profiles[0].scope_profiles[0].profiles[0].profile_id = vec![1; 3];
    let e = crate::validate(Signal::Profiles, &req.encode_to_vec()).unwrap_err();
    assert_eq!(
        e.path,
        "resource_profiles[0].scope_profiles[0].profiles[0].profile_id"
    );
    let mut req = profiles(&[vec![1]]);
    if let Some(d) = req.dictionary.as_mut() {
        d.string_table[1] = "ok".to_owned();
    }
    let mut bytes = req.encode_to_vec();
    // A traces request is not a valid profiles request.
    let pos = bytes.windows(2).position(|w| w == b"ok").unwrap();
    bytes[pos] = 0xff;
    let e = crate::validate(Signal::Profiles, &bytes).unwrap_err();
    assert_eq!(e.path, "dictionary.string_table[1]");
}
