"""Tests of ops/check-deploy-files: the repository's files pass, and each disagreement is reported.

    swift build && python3 -m unittest discover -s Tests/deploy

The checker reads the worker's settings and metric names from the built binary, so these tests need it
(./ops/test builds before it runs them).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "ops", "check-deploy-files")
BINARY = os.environ.get("UPLOAD_PURGER_BINARY", os.path.join(ROOT, ".build", "debug", "upload-purger"))
DEPLOY_PATHS = ["docker-compose.yml", "ops/Dockerfile", "ops/k8s", "ops/prometheus", "ops/grafana"]


def run(*arguments):
    result = subprocess.run([sys.executable, SCRIPT, "--binary", BINARY, *arguments], capture_output=True,
                            text=True)
    return result.returncode, result.stdout + result.stderr


@unittest.skipUnless(os.access(BINARY, os.X_OK), f"needs the worker binary ({BINARY}): swift build first")
class RepositoryFilesTests(unittest.TestCase):
    def test_the_repository_files_pass(self):
        code, output = run()
        self.assertEqual(code, 0, output)
        self.assertRegex(output, r"deploy files: [0-9]+ passed, 0 failed\n$")


class MissingBinaryTests(unittest.TestCase):
    def test_without_a_binary_it_says_to_build(self):
        result = subprocess.run([sys.executable, SCRIPT, "--binary", "/nonexistent/upload-purger"],
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 2)
        self.assertIn("swift build", result.stderr)


@unittest.skipUnless(os.access(BINARY, os.X_OK), f"needs the worker binary ({BINARY}): swift build first")
class DisagreementTests(unittest.TestCase):
    """Each test changes one thing in a copy of the deployment files and expects the check to say so."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="deploy-files-")
        self.addCleanup(shutil.rmtree, self.root)
        for path in DEPLOY_PATHS:
            source, target = os.path.join(ROOT, path), os.path.join(self.root, path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            (shutil.copytree if os.path.isdir(source) else shutil.copy)(source, target)

    def edit_yaml(self, path, change, multi=False):
        full = os.path.join(self.root, path)
        with open(full) as f:
            value = list(yaml.safe_load_all(f)) if multi else yaml.safe_load(f)
        change(value)
        with open(full, "w") as f:
            (yaml.safe_dump_all if multi else yaml.safe_dump)(value, f, sort_keys=False)

    def edit_text(self, path, old, new):
        full = os.path.join(self.root, path)
        with open(full) as f:
            text = f.read()
        self.assertIn(old, text)
        with open(full, "w") as f:
            f.write(text.replace(old, new))

    def assertPasses(self):
        code, output = run("--root", self.root)
        self.assertEqual(code, 0, output)

    def assertFails(self, *messages):
        code, output = run("--root", self.root)
        self.assertEqual(code, 1, output)
        for message in messages:
            self.assertRegex(output, rf"FAIL .*{message}")
        self.assertRegex(output, r"deploy files: [0-9]+ passed, [1-9][0-9]* failed\n$")

    def test_an_unknown_compose_setting(self):
        self.edit_yaml("docker-compose.yml", lambda c: c["services"]["worker-2"]["environment"].update(
            {"PURGER_BATCH_SIZE": "10"}))
        self.assertFails("worker-2: PURGER_BATCH_SIZE is not a setting of the worker")

    def test_a_kafka_property_passthrough_is_accepted(self):
        self.edit_yaml("docker-compose.yml", lambda c: c["services"]["worker-1"]["environment"].update(
            {"KAFKA_CLIENT_RACK": "a"}))
        self.assertPasses()

    def test_an_unknown_configmap_setting(self):
        self.edit_yaml("ops/k8s/configmap.yaml", lambda c: c["data"].update({"DATOCMS_TOKEN": "x"}))
        self.assertFails("configmap: DATOCMS_TOKEN is not a setting of the worker")

    def test_a_topic_kafka_init_does_not_create(self):
        self.edit_yaml("docker-compose.yml", lambda c: c["services"]["worker-1"]["environment"].update(
            {"PURGER_RESULTS_TOPIC": "results"}))
        self.assertFails("worker-1: PURGER_RESULTS_TOPIC is not the topic kafka-init creates")

    def test_a_base_url_off_the_simulator_port(self):
        self.edit_yaml("docker-compose.yml", lambda c: c["services"]["worker-1"]["environment"].update(
            {"DATOCMS_BASE_URL": "http://simulator:8081"}))
        self.assertFails("DATOCMS_BASE_URL is not the simulator's --port 8080")

    def test_a_worker_port_that_is_not_mapped(self):
        self.edit_yaml("docker-compose.yml", lambda c: c["services"]["worker-1"]["environment"].update(
            {"PURGER_HTTP_PORT": "9000"}))
        self.assertFails("worker-1: no port mapping to PURGER_HTTP_PORT 9000", "worker-1:9000 not a target")

    def test_a_compose_grace_period_within_the_budget(self):
        self.edit_yaml("docker-compose.yml", lambda c: c["services"]["worker-1"].update(
            {"stop_grace_period": "30s"}))
        self.assertFails("worker-1: stop_grace_period must be whole seconds above PURGER_SHUTDOWN_TIMEOUT_S")

    def test_grace_period_not_above_the_shutdown_budget(self):
        def change(documents):
            documents[0]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 30
        self.edit_yaml("ops/k8s/deployment.yaml", change, multi=True)
        self.assertFails(r"terminationGracePeriodSeconds \(30\) > PURGER_SHUTDOWN_TIMEOUT_S \(30\)")

    def test_a_longer_shutdown_budget_needs_a_longer_grace_period(self):
        self.edit_yaml("ops/k8s/configmap.yaml", lambda c: c["data"].update({"PURGER_SHUTDOWN_TIMEOUT_S": "60"}))
        self.assertFails(r"terminationGracePeriodSeconds \(45\) > PURGER_SHUTDOWN_TIMEOUT_S \(60\)")

    def test_a_probe_or_annotation_on_another_port(self):
        def change(documents):
            template = documents[0]["spec"]["template"]
            template["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = 8080
            template["metadata"]["annotations"]["prometheus.io/port"] = "9090"
        self.edit_yaml("ops/k8s/deployment.yaml", change, multi=True)
        self.assertFails("readinessProbe port 8080; prometheus.io/port 9090")

    def test_more_replicas_than_partitions(self):
        self.edit_yaml("ops/k8s/keda-scaledobject.yaml", lambda s: s["spec"].update({"maxReplicaCount": 12}))
        self.assertFails("maxReplicaCount 12 > 6 partitions")

    def test_keda_on_another_group(self):
        self.edit_yaml("ops/k8s/keda-scaledobject.yaml",
                       lambda s: s["spec"]["triggers"][0]["metadata"].update({"consumerGroup": "other"}))
        self.assertFails("consumerGroup other is not upload-purger")

    def test_keda_offset_reset_unlike_the_worker(self):
        self.edit_yaml("ops/k8s/keda-scaledobject.yaml",
                       lambda s: s["spec"]["triggers"][0]["metadata"].update({"offsetResetPolicy": "latest"}))
        self.assertFails(r"offsetResetPolicy is the worker's auto.offset.reset \(earliest\): offsetResetPolicy latest")

    def test_keda_follows_an_operator_override_of_the_offset_reset(self):
        self.edit_yaml("ops/k8s/configmap.yaml", lambda c: c["data"].update({"KAFKA_AUTO_OFFSET_RESET": "latest"}))
        self.assertFails(r"auto.offset.reset \(latest\): offsetResetPolicy earliest")
        self.edit_yaml("ops/k8s/keda-scaledobject.yaml",
                       lambda s: s["spec"]["triggers"][0]["metadata"].update({"offsetResetPolicy": "latest"}))
        self.assertPasses()

    def test_dockerfile_on_another_port(self):
        self.edit_text("ops/Dockerfile", "EXPOSE 9464", "EXPOSE 8080")
        self.assertFails("EXPOSE 9464 and")

    def test_an_alert_on_an_unknown_metric(self):
        self.edit_yaml("ops/prometheus/alerts.yml", lambda a: a["groups"][0]["rules"][1].update(
            {"expr": "sum(purger_lag) > 0 and sum(purger_batch_size_bucket) > 0"}))
        self.assertFails(r"UploadPurgerConsumerLagGrowing: unknown \['purger_lag'\]")

    def test_an_alert_without_a_firing_test(self):
        def change(tests):
            for group in tests["tests"]:
                group["alert_rule_test"] = [t for t in group["alert_rule_test"]
                                            if not (t["alertname"] == "UploadPurgerNoProgress" and t["exp_alerts"])]
        self.edit_yaml("ops/prometheus/alerts.test.yml", change)
        self.assertFails("UploadPurgerNoProgress: no firing test")

    def test_a_dashboard_panel_on_an_unknown_metric(self):
        path = os.path.join(self.root, "ops/grafana/upload-purger.json")
        with open(path) as f:
            dashboard = json.load(f)
        panel = next(p for p in dashboard["panels"] if p.get("targets"))
        panel["targets"][0]["expr"] = "sum(rate(purger_deletes_total[5m]))"
        with open(path, "w") as f:
            json.dump(dashboard, f)
        self.assertFails(r"unknown \['purger_deletes_total'\]")


if __name__ == "__main__":
    unittest.main()
