"""The production files under deploy/ hold together: the Helm values use only the keys that the
dagster chart's values.schema.json (release 1.13.27) allows where it forbids others, give every
key it requires there, mount the BAMs and the lake at the paths the environment names, and carry
no secret. (No cluster or Docker engine here: this is what can be checked without one; the
instance configuration deploy/dagster.yaml is loaded for real by the lake's system tests.)
"""

from pathlib import Path

import yaml

from bam_assets.orchestration.project_paths import PROJECT_DIR

DEPLOY = PROJECT_DIR / "deploy"

# From helm/dagster/values.schema.json of the dagster chart: these objects have
# additionalProperties false, and these keys are required.
K8S_RUN_LAUNCHER = {
    "allowed": {
        "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile",
        "envConfigMaps", "envSecrets", "envVars", "volumeMounts", "volumes", "labels",
        "failPodOnRunFailure", "resources", "schedulerName", "securityContext", "runK8sConfig",
    },
    "required": {
        "imagePullPolicy", "loadInclusterConfig", "envConfigMaps", "envSecrets", "envVars",
        "volumeMounts", "volumes",
    },
}  # fmt: skip
CELERY_K8S_RUN_LAUNCHER = {
    "allowed": {
        "image", "imagePullPolicy", "nameOverride", "configSource", "workerQueues", "env",
        "envConfigMaps", "envSecrets", "annotations", "nodeSelector", "affinity", "tolerations",
        "podSecurityContext", "securityContext", "resources", "livenessProbe", "volumeMounts",
        "volumes", "labels", "failPodOnRunFailure", "schedulerName", "jobNamespace",
    },
    "required": {
        "image", "nameOverride", "configSource", "workerQueues", "env", "envConfigMaps",
        "envSecrets", "annotations", "nodeSelector", "affinity", "tolerations",
        "podSecurityContext", "securityContext", "resources", "livenessProbe", "volumeMounts",
        "volumes",
    },
}  # fmt: skip
POSTGRESQL_REQUIRED = {
    "image", "enabled", "postgresqlHost", "postgresqlUsername", "postgresqlPassword",
    "postgresqlDatabase", "postgresqlParams", "service",
}  # fmt: skip
USER_DEPLOYMENT_REQUIRED = {"name", "image", "port"}


def values(name: str) -> dict:
    return yaml.safe_load((DEPLOY / "helm" / name).read_text())


def check(config: dict, schema: dict) -> None:
    assert set(config) <= schema["allowed"], set(config) - schema["allowed"]
    assert schema["required"] <= set(config), schema["required"] - set(config)


def mounts(config: dict) -> dict[str, str]:
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in config["volumes"]}
    return {claims[m["name"]]: m["mountPath"] for m in config["volumeMounts"]}


def test_the_helm_values_fit_the_chart_schema_and_mount_what_the_environment_names():
    main = values("values.yaml")
    launcher = main["runLauncher"]["config"]["k8sRunLauncher"]
    check(launcher, K8S_RUN_LAUNCHER)
    assert main["runLauncher"]["type"] == "K8sRunLauncher"
    assert POSTGRESQL_REQUIRED <= set(main["postgresql"]) and not main["postgresql"]["enabled"]
    [deployment] = main["dagster-user-deployments"]["deployments"]
    assert USER_DEPLOYMENT_REQUIRED <= set(deployment)
    expected = {"bam-assets-bams": "/data/bams", "bam-assets-lake": "/data/lake"}
    assert mounts(launcher) == mounts(deployment) == expected
    run_env = dict(variable.split("=", 1) for variable in launcher["envVars"])
    code_env = {variable["name"]: variable["value"] for variable in deployment["env"]}
    assert run_env == code_env
    assert run_env["BAM_ASSETS_STORE"] == "postgres"
    assert run_env["BAM_ASSETS_LAKE_DATA_PATH"] == expected["bam-assets-lake"]
    assert run_env["BAM_ASSETS_WATCH_DIR"] == expected["bam-assets-bams"]
    assert launcher["envSecrets"] == deployment["envSecrets"] == [{"name": "bam-assets-lake"}]
    celery = values("values-celery.yaml")["runLauncher"]["config"]["celeryK8sRunLauncher"]
    check(celery, CELERY_K8S_RUN_LAUNCHER)
    assert mounts(celery) == expected
    assert celery["env"] == {**run_env, "BAM_ASSETS_RUN_EXECUTOR": "celery_k8s"}
    [celery_deployment] = values("values-celery.yaml")["dagster-user-deployments"]["deployments"]
    assert {key: value for key, value in celery_deployment.items() if key != "env"} == {
        key: value for key, value in deployment.items() if key != "env"
    }
    celery_code_env = {item["name"]: item["value"] for item in celery_deployment["env"]}
    assert celery_code_env == celery["env"]


def test_no_deployment_file_holds_a_secret():
    for path in DEPLOY.rglob("*"):
        if path.suffix in {".yaml", ".sh", ""} and path.is_file():
            for document in yaml.safe_load_all(path.read_text()) if path.suffix == ".yaml" else []:
                assert_no_secret(document, path)
    dockerfile = (DEPLOY / "Dockerfile").read_text().splitlines()
    baked = [line for line in dockerfile if line.startswith(("ENV", "ARG", "    BAM_", "    PG"))]
    assert not [line for line in baked if "PASSWORD" in line or "CATALOG" in line]


def assert_no_secret(node: object, path: Path) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if "password" in str(key).lower() and isinstance(value, str):
                assert value == "", f"{path}: {key} holds a value"
            assert_no_secret(value, path)
    elif isinstance(node, list):
        for item in node:
            assert_no_secret(item, path)
