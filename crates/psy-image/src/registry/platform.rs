//! This machine's platform in OCI terms (`linux/amd64`, `linux/arm64/v8`, ...) and the choice
//! of a manifest list's entry for it.

use crate::spec::{Descriptor, Platform};

/// The platform images must be built for to run here.
pub(crate) fn this_machine() -> Platform {
    let (architecture, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "x86" => ("386", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "powerpc64" => ("ppc64le", None),
        "loongarch64" => ("loong64", None),
        other => (other, None),
    };
    Platform {
        architecture: architecture.to_string(),
        os: "linux".to_string(),
        variant: variant.map(str::to_string),
    }
}

/// `os/arch[/variant]`.
pub(crate) fn show(platform: &Platform) -> String {
    match &platform.variant {
        Some(v) => format!("{}/{}/{v}", platform.os, platform.architecture),
        None => format!("{}/{}", platform.os, platform.architecture),
    }
}

/// The entry of `manifests` for `wanted`: same os and architecture, and the same variant
/// where both name one (an entry without a variant fits any).
pub(crate) fn choose<'a>(manifests: &'a [Descriptor], wanted: &Platform) -> Option<&'a Descriptor> {
    let fits = |d: &&Descriptor| {
        d.platform.as_ref().is_some_and(|p| {
            p.os == wanted.os
                && p.architecture == wanted.architecture
                && match (&p.variant, &wanted.variant) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
        })
    };
    let exact = |d: &&Descriptor| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.variant == wanted.variant)
    };
    manifests
        .iter()
        .filter(fits)
        .find(exact)
        .or_else(|| manifests.iter().find(fits))
}

/// The platforms `manifests` offer, for an error naming them.
pub(crate) fn available(manifests: &[Descriptor]) -> String {
    let names: Vec<String> = manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .map(show)
        .collect();
    if names.is_empty() {
        "no platform entries".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, variant: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: String::new(),
            digest: format!("sha256:{arch}{}", variant.unwrap_or("")),
            size: 0,
            platform: Some(Platform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(Into::into),
            }),
            annotations: Default::default(),
        }
    }

    #[test]
    fn chooses_architecture_then_variant() {
        let list = [
            entry("amd64", None),
            entry("arm", Some("v6")),
            entry("arm", Some("v7")),
            entry("arm64", Some("v8")),
        ];
        let want = |arch: &str, variant: Option<&str>| Platform {
            architecture: arch.into(),
            os: "linux".into(),
            variant: variant.map(Into::into),
        };
        assert_eq!(
            choose(&list, &want("amd64", None)).unwrap().digest,
            "sha256:amd64"
        );
        assert_eq!(
            choose(&list, &want("arm", Some("v7"))).unwrap().digest,
            "sha256:armv7"
        );
        assert_eq!(
            choose(&list, &want("arm64", None)).unwrap().digest,
            "sha256:arm64v8"
        );
        assert!(choose(&list, &want("riscv64", None)).is_none());
        assert_eq!(
            available(&list),
            "linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8"
        );
    }
}
