//! Registration through the Service Registry API: the admin token, the
//! callback address rules, the answer to a create, public reads and
//! deletes (API-5, API-6, API-8, CB-16).

use reqwest::Method;
use serde_json::Value;
use tagcast_spec::Stage;
use tagcast_spec::webhook::Secret;

use super::sequence::RETRY_AFTER_SECONDS;
use super::verdicts::{created_id, has_key, private_receiver};
use super::{Run, Subscriber};
use crate::check::{Check, Evidence, Verdict};
use crate::exchange::Request;
use crate::outcome::Level;
use crate::receiver::Answer;

check!(
    AUTH,
    "broker/registration/auth",
    "API-5",
    "a write without the admin token is answered 401, with a wrong one 403"
);

check!(
    CREATE,
    "broker/registration/create",
    "API-8",
    "POST /services with a subscription is answered 201 with the secret once and a hook per registry"
);

check!(
    READ_BACK,
    "broker/registration/read-back",
    "API-6",
    "GET /services/{id} and GET /services show the subscription and never its secret or, without the admin token, its hook tokens"
);

check!(
    SSRF,
    "broker/registration/ssrf",
    "CB-16",
    "a subscription whose callbackUrl is the cloud metadata address 169.254.169.254 is refused (judged only when the runner's receiver is not itself private)"
);

check!(
    CLEANUP,
    "broker/cleanup",
    "API-5",
    "DELETE /services/{id} removes each service the runner created (then 404)"
);

impl Run<'_> {
    /// Registers the test subscribers, one per behaviour of the runner's
    /// receiver; the verdict of `broker/registration/create`.
    pub(super) async fn subscribe(&mut self) -> Verdict {
        let plan: [(&'static str, Stage, Option<&str>, Answer, bool); 9] = [
            ("prod", Stage::Production, None, Answer::Accept, false),
            ("staging", Stage::Staging, None, Answer::Accept, false),
            ("v2", Stage::Production, Some("^2.0"), Answer::Accept, false),
            ("retry", Stage::Production, None, Answer::FailFirst(1), false),
            (
                "busy",
                Stage::Production,
                None,
                Answer::Throttle(503, RETRY_AFTER_SECONDS),
                false,
            ),
            (
                "throttled",
                Stage::Production,
                None,
                Answer::Throttle(429, RETRY_AFTER_SECONDS),
                false,
            ),
            ("reject", Stage::Production, None, Answer::Always(400), false),
            ("gone", Stage::Production, None, Answer::Gone, false),
            ("dist", Stage::Production, None, Answer::Accept, true),
        ];
        let mut create_problem: Option<(String, Evidence)> = None;
        for (inbox, stage, api, answer, distribution) in plan {
            let callback = self.receiver.inbox(inbox, answer);
            let (kind, registry) = if distribution {
                ("distribution", self.distribution_registry.clone())
            } else {
                ("generic", self.generic_registry.clone())
            };
            let body = self.registration(inbox, stage, api, kind, &registry, &callback);
            match self.register(&body).await {
                Err(problem) => {
                    create_problem.get_or_insert(problem);
                }
                Ok((answer, request)) => {
                    let id = answer.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
                    let secret = answer
                        .pointer("/subscription/secret")
                        .and_then(Value::as_str)
                        .and_then(|s| Secret::parse(s).ok());
                    if secret.is_none() {
                        create_problem.get_or_insert((
                            "the answer to the write has no subscription.secret whsec_…".into(),
                            Evidence::new(
                                request.describe(),
                                "201 with subscription.secret",
                                crate::exchange::excerpt(&answer.to_string()),
                            ),
                        ));
                    }
                    let hook = answer
                        .pointer("/subscription/hooks")
                        .and_then(Value::as_array)
                        .and_then(|hooks| {
                            hooks
                                .iter()
                                .find(|h| h.get("kind").and_then(Value::as_str) == Some(kind))
                                .cloned()
                        });
                    match hook {
                        None => {
                            create_problem.get_or_insert((
                                format!("the answer has no {kind} hook for {registry}"),
                                Evidence::new(
                                    request.describe(),
                                    format!("subscription.hooks[] with kind {kind}"),
                                    crate::exchange::excerpt(&answer.to_string()),
                                ),
                            ));
                        }
                        Some(hook) => {
                            let url = hook.get("url").and_then(Value::as_str).unwrap_or_default().to_owned();
                            if distribution {
                                self.distribution_hook.get_or_insert(url);
                            } else if self.generic_hook.is_none() {
                                if let Some(secret) = hook
                                    .get("secret")
                                    .and_then(Value::as_str)
                                    .and_then(|s| Secret::parse(s).ok())
                                {
                                    self.generic_hook = Some((url, secret));
                                }
                            }
                        }
                    }
                    self.subscribers.insert(inbox, Subscriber { inbox, id, secret });
                }
            }
        }
        if self.generic_hook.is_none() && create_problem.is_none() {
            create_problem = Some((
                "no answer carried the generic hook's signing secret (subscription.hooks[].secret)".into(),
                Evidence::default(),
            ));
        }
        match create_problem {
            None => Verdict::pass(),
            Some((message, evidence)) => Verdict::fail(message, evidence),
        }
    }

    pub(super) async fn auth(&mut self, body: &Value) -> Verdict {
        let url = self.target.endpoint("services");
        // API-5: 401 when the token is missing, 403 when it is present but wrong.
        let wrong = Some(format!("wrong-{}", self.run));
        for (token, expected) in [(None, &[401u16][..]), (wrong, &[403][..])] {
            let request = self.write(Method::POST, url.clone(), token.as_deref(), body);
            match request.send(&self.client).await {
                Err(e) => {
                    return Verdict::fail(
                        format!("no answer: {e}"),
                        Evidence::new(request.describe(), "401", "no HTTP answer"),
                    );
                }
                Ok(r) if expected.contains(&r.status.as_u16()) => {}
                Ok(r) => {
                    if let Some(id) = created_id(&r.body) {
                        self.created.push(id);
                    }
                    return Verdict::fail(
                        format!(
                            "a write {} was answered {}",
                            if token.is_some() {
                                "with a wrong token"
                            } else {
                                "without a token"
                            },
                            r.status.as_u16()
                        ),
                        Evidence::new(
                            request.describe(),
                            expected.iter().map(u16::to_string).collect::<Vec<_>>().join(" or "),
                            r.describe(),
                        ),
                    );
                }
            }
        }
        Verdict::pass()
    }

    pub(super) async fn ssrf(&mut self, body: &Value) -> Verdict {
        let request = self.write(
            Method::POST,
            self.target.endpoint("services"),
            Some(&self.target.admin_token),
            body,
        );
        match request.send(&self.client).await {
            Err(e) => Verdict::fail(
                format!("no answer: {e}"),
                Evidence::new(request.describe(), "4xx", "no HTTP answer"),
            ),
            Ok(r) if r.status.is_client_error() => Verdict::pass(),
            Ok(r) => {
                if let Some(id) = created_id(&r.body) {
                    self.created.push(id);
                }
                if private_receiver(self.receiver.base()) {
                    return Verdict::Skip(format!(
                        "the broker accepted a metadata-address callback, which CB-16 allows when its operator \
                         allowed private callbacks, as a broker that must reach the runner's receiver at {} has \
                         to; give a public --callback-base to judge this check",
                        self.receiver.base()
                    ));
                }
                Verdict::fail(
                    format!("a metadata-address callback was answered {}", r.status.as_u16()),
                    Evidence::new(request.describe(), "4xx: the callback URL is refused", r.describe()),
                )
            }
        }
    }

    pub(super) async fn read_back(&self) -> Verdict {
        let prod = &self.subscribers["prod"];
        let secrets: Vec<String> = self
            .subscribers
            .values()
            .filter_map(|s| s.secret.as_ref().map(Secret::expose))
            .collect();
        for url in [
            self.target.endpoint(&format!("services/{}", prod.id)),
            self.target.endpoint("services"),
        ] {
            let request = Request::new(Method::GET, url);
            let response = match request.send(&self.client).await {
                Ok(r) => r,
                Err(e) => {
                    return Verdict::fail(
                        format!("no answer: {e}"),
                        Evidence::new(request.describe(), "200", "no HTTP answer"),
                    );
                }
            };
            let text = String::from_utf8_lossy(&response.body).into_owned();
            if !response.status.is_success() {
                return Verdict::fail(
                    format!("answered {}", response.status.as_u16()),
                    Evidence::new(request.describe(), "200", response.describe()),
                );
            }
            let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let leaked = secrets.iter().any(|s| text.contains(s.as_str())) || has_key(&json, "secret");
            if leaked {
                return Verdict::fail(
                    "a read returned a subscription secret",
                    Evidence::new(request.describe(), "no secret in any read", response.describe()),
                );
            }
            // A hook URL's token is the registry's credential: a public read
            // must not carry it (API-3).
            let hook_tokens = self
                .generic_hook
                .iter()
                .map(|(url, _)| url.as_str())
                .chain(self.distribution_hook.as_deref())
                .filter_map(|url| url.rsplit('/').next())
                .filter(|token| !token.is_empty());
            for token in hook_tokens {
                if text.contains(token) {
                    return Verdict::fail(
                        "a public read returned a hook URL with its token",
                        Evidence::new(
                            request.describe(),
                            "no hook token in a read without the admin token",
                            response.describe(),
                        ),
                    );
                }
            }
            let found = if json.is_array() {
                json.as_array()
                    .into_iter()
                    .flatten()
                    .find(|s| s.get("id").and_then(Value::as_str) == Some(prod.id.as_str()))
                    .cloned()
            } else {
                Some(json.clone())
            };
            let stage = found
                .as_ref()
                .and_then(|s| s.pointer("/subscription/stage"))
                .and_then(Value::as_str);
            if stage != Some("production") {
                return Verdict::fail(
                    format!("service {} does not read back with its subscription", prod.id),
                    Evidence::new(
                        request.describe(),
                        "the service with subscription.stage production",
                        response.describe(),
                    ),
                );
            }
        }
        Verdict::pass()
    }

    pub(super) async fn cleanup(&mut self) -> Verdict {
        let mut problems = Vec::new();
        for id in std::mem::take(&mut self.created) {
            let url = self.target.endpoint(&format!("services/{id}"));
            let request = Request::new(Method::DELETE, url.clone())
                .header("authorization", format!("Bearer {}", self.target.admin_token));
            match request.send(&self.client).await {
                Ok(r) if r.status.is_success() => {}
                Ok(r) => problems.push(format!("DELETE {url}: {}", r.status)),
                Err(e) => problems.push(format!("DELETE {url}: {e}")),
            }
            match Request::new(Method::GET, url.clone()).send(&self.client).await {
                Ok(r) if r.status.as_u16() == 404 => {}
                Ok(r) => problems.push(format!("GET {url} after DELETE: {}", r.status)),
                Err(e) => problems.push(format!("GET {url} after DELETE: {e}")),
            }
        }
        if problems.is_empty() {
            Verdict::pass()
        } else {
            Verdict::fail(
                "services the runner created are still there",
                Evidence::new(
                    "DELETE then GET of each service the runner created",
                    "2xx, then 404",
                    problems.join("\n"),
                ),
            )
        }
    }
}
