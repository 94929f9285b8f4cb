//! `reference/deploy/`: the example upgrade script and the manifests.

use std::path::PathBuf;
use std::process::Command;

use crate::*;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(file)
}

/// A kubectl stand-in that logs its arguments and fails `rollout status`
/// when `FAIL_ROLLOUT` is set.
fn fake_kubectl(dir: &Path) -> PathBuf {
    let path = dir.join("kubectl");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\ncase \"$*\" in *'rollout status'*) [ -z \"${{FAIL_ROLLOUT:-}}\" ] || exit 1;; esac\nexit 0\n",
            dir.join("calls").display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    path
}

fn calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn upgrade_script_rolls_out_through_exec_mode() {
    let dir = tempfile::tempdir().unwrap();
    let kubectl = fake_kubectl(dir.path());
    let command = format!(
        "KUBECTL='{}' UPGRADE_NAMESPACE=ga4gh UPGRADE_WORKLOAD=deployment/cwl-wes UPGRADE_CONTAINER=wes '{}'",
        kubectl.display(),
        deploy("upgrade.sh").display()
    );
    let state = state_with(Applier::Exec(Exec {
        command,
        timeout: Duration::from_secs(20),
    }))
    .await;
    state.store.seed_applied(IMAGE, V1).await.unwrap();
    assert_eq!(send(&state, callback("evt_2", V2)).await.0, StatusCode::ACCEPTED);
    run_pending(&state).await.unwrap();
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].outcome, Outcome::Applied, "{}", history[0].reason);
    let d = digest(V2.len() as u8);
    assert_eq!(
        calls(dir.path()),
        [
            format!("--namespace ga4gh set image deployment/cwl-wes wes={IMAGE}:{V2}@{d}"),
            format!(
                "--namespace ga4gh annotate --overwrite deployment/cwl-wes tagcast.elixir-cloud.org/digest={d} \
                 tagcast.elixir-cloud.org/tag={V2} tagcast.elixir-cloud.org/event-id=evt_2 \
                 kubernetes.io/change-cause=tagcast: {IMAGE} {V1} -> {V2}"
            ),
            "--namespace ga4gh rollout status deployment/cwl-wes --timeout=300s".to_owned(),
        ]
    );
}

#[test]
fn upgrade_script_rolls_back_a_failed_rollout_and_checks_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let kubectl = fake_kubectl(dir.path());
    let d = digest(1);
    let run = |fail: bool, reference: &str| {
        let mut cmd = Command::new("sh");
        cmd.arg(deploy("upgrade.sh"))
            .env("KUBECTL", &kubectl)
            .env("TAGCAST_IMAGE", IMAGE)
            .env("TAGCAST_TAG", V2)
            .env("TAGCAST_DIGEST", d.to_string())
            .env("TAGCAST_REFERENCE", reference)
            .env("TAGCAST_EVENT_ID", "evt_2")
            .env("UPGRADE_TIMEOUT", "5s");
        if fail {
            cmd.env("FAIL_ROLLOUT", "1");
        }
        cmd.output().unwrap()
    };
    let output = run(true, &format!("{IMAGE}:{V2}@{d}"));
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let calls = calls(dir.path());
    assert_eq!(
        calls[0],
        format!("--namespace default set image deployment/cwl-wes cwl-wes={IMAGE}:{V2}@{d}")
    );
    assert_eq!(calls[3], "--namespace default rollout undo deployment/cwl-wes");
    assert!(String::from_utf8_lossy(&output.stderr).contains("rolling back"));

    let output = run(false, &format!("{IMAGE}:{V2}"));
    assert_eq!(output.status.code(), Some(2), "a reference without digest is refused");
    let mut cmd = Command::new("sh");
    let output = cmd
        .arg(deploy("upgrade.sh"))
        .env_remove("TAGCAST_IMAGE")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("TAGCAST_IMAGE is not set"));
}

/// The objects of a manifest file, as kubectl reads them (offline).
fn objects(file: &str) -> Vec<Value> {
    let output = Command::new("kubectl")
        .args(["label", "--local", "-o", "json", "-f"])
        .arg(deploy(file))
        .arg("tagcast.test/parsed=true")
        .output()
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "{file}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::Deserializer::from_slice(&output.stdout)
        .into_iter::<Value>()
        .map(Result::unwrap)
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn env<'a>(container: &'a Value, name: &str) -> &'a Value {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no env {name}"))
}

fn check_deployer(objects: &[Value]) -> (String, String) {
    let deployment = find(objects, "Deployment", "tagcast-deployer");
    let ns = deployment["metadata"]["namespace"].as_str().unwrap().to_owned();
    assert!(
        objects.iter().all(|o| o["metadata"]["namespace"] == ns.as_str()),
        "one namespace"
    );
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "tagcast-deployer");
    assert_eq!(deployment["spec"]["replicas"], 1, "one writer of the state file");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let container = &pod["containers"][0];
    assert_eq!(env(container, "TAGCAST_APPLY")["value"], "kubernetes");
    assert_eq!(env(container, "TAGCAST_NAMESPACE")["value"], ns.as_str());
    assert_eq!(
        env(container, "TAGCAST_SECRET")["valueFrom"]["secretKeyRef"]["key"],
        "secret"
    );
    assert!(
        env(container, "TAGCAST_SECRET").get("value").is_none(),
        "no secret in the manifest"
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/healthz");
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert!(security.get("runAsUser").is_none() && pod["securityContext"].get("runAsUser").is_none());
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let state = env(container, "TAGCAST_STATE")["value"].as_str().unwrap();
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert!(
        state.starts_with(&format!("{mount}/")),
        "the state file is on the volume"
    );
    let claim = pod["volumes"][0]["persistentVolumeClaim"]["claimName"]
        .as_str()
        .unwrap();
    find(objects, "PersistentVolumeClaim", claim);

    // The Role may only get and patch the one managed Deployment.
    let workload = env(container, "TAGCAST_DEPLOYMENT")["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let role = find(objects, "Role", "tagcast-deployer");
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": [workload], "verbs": ["get", "patch"]}])
    );
    let binding = find(objects, "RoleBinding", "tagcast-deployer");
    assert_eq!(binding["roleRef"]["name"], "tagcast-deployer");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "tagcast-deployer", "namespace": ns}])
    );
    let service = find(objects, "Service", "tagcast-deployer");
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["template"]["metadata"]["labels"].clone()
    );
    let route = env(container, "TAGCAST_ROUTE")["value"].as_str().unwrap().to_owned();
    (workload, route)
}

#[test]
#[ignore = "needs kubectl"]
fn kubernetes_manifests_are_valid_and_least_privilege() {
    let deployer = objects("kubernetes/deployer.yaml");
    let (workload, route) = check_deployer(&deployer);
    let ingress = find(&deployer, "Ingress", "tagcast-deployer");
    assert_eq!(ingress["spec"]["rules"][0]["http"]["paths"][0]["path"], route.as_str());
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        "tagcast-deployer"
    );

    // The managed workload has the container and image the deployer names.
    let wes = objects("kubernetes/cwl-wes.yaml");
    let target = find(&wes, "Deployment", &workload);
    let container = env(
        &find(&deployer, "Deployment", "tagcast-deployer")["spec"]["template"]["spec"]["containers"][0],
        "TAGCAST_CONTAINER",
    )["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let image = target["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == container.as_str())
        .expect("the named container")["image"]
        .as_str()
        .unwrap();
    assert_eq!(
        tagcast_spec::ImageReference::parse(image).unwrap().repository(),
        Repository::parse(IMAGE).unwrap()
    );

    let broker = objects("kubernetes/broker.yaml");
    let deployment = find(&broker, "Deployment", "tagcast-broker");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["automountServiceAccountToken"], false,
        "the broker has no cluster access"
    );
    find(&broker, "ServiceAccount", pod["serviceAccountName"].as_str().unwrap());
    find(
        &broker,
        "PersistentVolumeClaim",
        pod["volumes"][0]["persistentVolumeClaim"]["claimName"]
            .as_str()
            .unwrap(),
    );
    let c = &pod["containers"][0];
    assert_eq!(c["args"], json!(["broker"]));
    assert_eq!(
        env(c, "TAGCAST_ADMIN_TOKEN")["valueFrom"]["secretKeyRef"]["key"],
        "admin-token"
    );
    assert!(!broker.iter().any(|o| o["kind"] == "Role" || o["kind"] == "RoleBinding"));
}

#[test]
#[ignore = "needs kubectl"]
fn openshift_manifest_is_the_kubernetes_one_with_a_route() {
    let kubernetes = objects("kubernetes/deployer.yaml");
    let openshift = objects("openshift/deployer.yaml");
    let (_, route) = check_deployer(&openshift);
    let without = |objects: &[Value], kind: &str| -> Vec<Value> {
        objects.iter().filter(|o| o["kind"] != kind).cloned().collect()
    };
    assert_eq!(
        without(&openshift, "Route"),
        without(&kubernetes, "Ingress"),
        "the same objects otherwise"
    );
    let r = find(&openshift, "Route", "tagcast-deployer");
    assert_eq!(r["spec"]["path"], route.as_str());
    assert_eq!(r["spec"]["to"]["name"], "tagcast-deployer");
    assert_eq!(r["spec"]["tls"]["termination"], "edge");
    assert_eq!(r["spec"]["tls"]["insecureEdgeTerminationPolicy"], "Redirect");
}

#[test]
#[ignore = "needs kubectl"]
fn kubectl_set_image_pins_the_example_workload_offline() {
    let output = Command::new("kubectl")
        .args(["set", "image", "--local", "-o", "json", "-f"])
        .arg(deploy("kubernetes/cwl-wes.yaml"))
        .arg(format!("wes={IMAGE}:{V2}@{}", digest(1)))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let object: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        object["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("{IMAGE}:{V2}@{}", digest(1))
    );
}
