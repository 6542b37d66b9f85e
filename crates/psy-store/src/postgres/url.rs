//! Connection strings as they may appear in messages and logs: the password replaced by `***`,
//! whether it is in a URL's user info, its query (`?password=`) or a `key=value` string.

/// `url` with every password hidden.
pub(crate) fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let authority = match authority.rsplit_once('@') {
            Some((user_info, host)) => match user_info.split_once(':') {
                Some((user, _password)) => format!("{user}:***@{host}"),
                None => format!("{user_info}@{host}"),
            },
            None => authority.to_string(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => format!("{path}?{}", redact_pairs(query, '&')),
            None => tail.to_string(),
        };
        format!("{scheme}://{authority}{tail}")
    } else {
        redact_pairs(url, ' ')
    }
}

/// Hides the value of every `password=` pair in `pairs` separated by `sep`.
fn redact_pairs(pairs: &str, sep: char) -> String {
    pairs
        .split(sep)
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.trim() == "password" => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join(&sep.to_string())
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_hidden_wherever_they_are() {
        let cases = [
            (
                "postgres://psy:s3cret@db.example:5432/psy?sslmode=disable",
                "postgres://psy:***@db.example:5432/psy?sslmode=disable",
            ),
            (
                "postgresql://psy@127.0.0.1/x",
                "postgresql://psy@127.0.0.1/x",
            ),
            (
                "postgres://u:p@h/d?password=q&x=1",
                "postgres://u:***@h/d?password=***&x=1",
            ),
            ("postgres://h?password=q", "postgres://h?password=***"),
            (
                "host=h user=u password=p dbname=d",
                "host=h user=u password=*** dbname=d",
            ),
            ("postgres://a:b@c:d@h/db", "postgres://a:***@h/db"),
        ];
        for (url, want) in cases {
            assert_eq!(redact(url), want, "{url}");
        }
    }
}
