"""Tests of ops/check-deploy-files: the repository's files pass, and each kind of breakage is reported.

    python3 -m unittest discover -s Tests/deploy
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
DEPLOY_PATHS = ["docker-compose.yml", ".dockerignore", "ops/Dockerfile", "ops/k8s", "ops/prometheus",
                "ops/grafana", "schemas"]

# The exact bytes CompletionEventTests.writesTheContractShapeInContractOrder expects the worker to write.
WORKER_EVENT = (
    '{"schema":"upload-deletion-result/v1","batch_id":"0f8e2f0c-3b7e-4c1e-9a53-1d1f0c2b7a11",'
    '"environment":null,"status":"completed","job_id":"4235","job_status":200,"requested":2,'
    '"successful":1,"failed":1,"failed_upload_ids":["q0VNpiNQSkG6z0lif_O1zg"],'
    '"upload_ids":["q0VNpiNQSkG6z0lif_O1zg","20042921"],'
    '"requests":[{"request_id":"article-4711-cleanup","topic":"upload-deletion-requests","partition":3,'
    '"offset":1187}],"error":null,"attempts":1,"polls":2,"first_enqueued_at":"2026-11-28T10:00:00.120Z",'
    '"submitted_at":"2026-11-28T10:00:02.130Z","completed_at":"2026-11-28T10:00:03.410Z"}'
)


def run(*arguments, stdin=None):
    result = subprocess.run([sys.executable, SCRIPT, *arguments], capture_output=True, text=True, input=stdin)
    return result.returncode, result.stdout + result.stderr


class RepositoryFilesTests(unittest.TestCase):
    def test_the_repository_files_pass(self):
        code, output = run()
        self.assertEqual(code, 0, output)
        self.assertRegex(output, r"deploy files: [0-9]+ passed, 0 failed\n$")


class BreakageTests(unittest.TestCase):
    """Each test breaks one thing in a copy of the deployment files and expects the check to say so."""

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

    def assertFails(self, *messages):
        code, output = run("--root", self.root)
        self.assertEqual(code, 1, output)
        for message in messages:
            self.assertRegex(output, rf"FAIL .*{message}")
        self.assertRegex(output, r"deploy files: [0-9]+ passed, [1-9][0-9]* failed\n$")

    def test_an_unknown_worker_setting(self):
        self.edit_yaml("docker-compose.yml",
                       lambda c: c["services"]["worker-2"]["environment"].update({"PURGER_BATCH_SIZE": "10"}))
        self.assertFails("PURGER_BATCH_SIZE is not a CONTRACT section 4 name")

    def test_a_kafka_property_passthrough_is_accepted(self):
        self.edit_yaml("docker-compose.yml",
                       lambda c: c["services"]["worker-1"]["environment"].update({"KAFKA_CLIENT_RACK": "a"}))
        code, output = run("--root", self.root)
        self.assertEqual(code, 0, output)

    def test_kafka_without_a_healthcheck(self):
        self.edit_yaml("docker-compose.yml", lambda c: c["services"]["kafka"].pop("healthcheck"))
        self.assertFails("kafka has a healthcheck")

    def test_workers_not_waiting_for_topics(self):
        self.edit_yaml("docker-compose.yml",
                       lambda c: c["services"]["worker-1"]["depends_on"].pop("kafka-init"))
        self.assertFails("depends_on kafka-init needs condition service_completed_successfully")

    def test_a_single_worker(self):
        self.edit_yaml("docker-compose.yml", lambda c: c["services"].pop("worker-2"))
        self.assertFails("two worker replicas")

    def test_grace_period_not_above_the_shutdown_budget(self):
        def change(documents):
            documents[0]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 30
        self.edit_yaml("ops/k8s/deployment.yaml", change, multi=True)
        self.assertFails(r"terminationGracePeriodSeconds \(30\) > PURGER_SHUTDOWN_TIMEOUT_S \(30\)")

    def test_a_longer_shutdown_budget_needs_a_longer_grace_period(self):
        self.edit_yaml("ops/k8s/configmap.yaml", lambda c: c["data"].update({"PURGER_SHUTDOWN_TIMEOUT_S": "60"}))
        self.assertFails(r"terminationGracePeriodSeconds \(45\) > PURGER_SHUTDOWN_TIMEOUT_S \(60\)")

    def test_token_as_a_plain_value(self):
        def change(documents):
            container = documents[0]["spec"]["template"]["spec"]["containers"][0]
            container["env"] = [{"name": "DATOCMS_API_TOKEN", "value": "secret"}]
        self.edit_yaml("ops/k8s/deployment.yaml", change, multi=True)
        self.assertFails("API token comes from a Secret")

    def test_more_replicas_than_partitions(self):
        self.edit_yaml("ops/k8s/keda-scaledobject.yaml", lambda s: s["spec"].update({"maxReplicaCount": 12}))
        self.assertFails(r"maxReplicaCount \(12\) <= requests topic partitions \(6\)")

    def test_wrong_probe_path(self):
        def change(documents):
            documents[0]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = "/healthz"
        self.edit_yaml("ops/k8s/deployment.yaml", change, multi=True)
        self.assertFails("readinessProbe path /healthz")

    def test_runtime_as_root(self):
        self.edit_text("ops/Dockerfile", "USER 10001:10001", "USER root")
        self.assertFails("non-root USER")

    def test_runtime_without_librdkafka(self):
        self.edit_text("ops/Dockerfile", "librdkafka1 ", "")
        self.assertFails("runtime installs librdkafka1")

    def test_an_alert_without_for_or_severity(self):
        def change(alerts):
            rule = alerts["groups"][0]["rules"][0]
            rule.pop("for")
            rule["labels"].pop("severity")
        self.edit_yaml("ops/prometheus/alerts.yml", change)
        self.assertFails("no valid `for`", "labels.severity")

    def test_an_alert_on_an_unknown_metric(self):
        self.edit_yaml("ops/prometheus/alerts.yml", lambda a: a["groups"][0]["rules"][1].update(
            {"expr": "sum(purger_lag) > 0"}))
        self.assertFails(r"unknown metrics \['purger_lag'\]")

    def test_rules_not_loaded(self):
        self.edit_yaml("ops/prometheus/prometheus.yml", lambda p: p.update({"rule_files": []}))
        self.assertFails("rule_files loads alerts.yml")

    def test_a_dashboard_panel_without_purger_metric(self):
        path = os.path.join(self.root, "ops/grafana/upload-purger.json")
        with open(path) as f:
            dashboard = json.load(f)
        next(p for p in dashboard["panels"] if p["type"] == "timeseries")["targets"][0]["expr"] = "up"
        with open(path, "w") as f:
            json.dump(dashboard, f)
        self.assertFails("expr mentions no purger_ metric")

    def test_a_broken_schema(self):
        self.edit_text("schemas/deletion-request.schema.json", '"maxItems": 1000', '"maxItems": "many"')
        self.assertFails("is a valid draft 2020-12 schema")

    def test_an_example_that_does_not_validate(self):
        self.edit_text("schemas/examples/completion-event.json", '"successful": 2', '"successful": 3')
        self.assertFails(r"successful \(3\) \+ failed \(1\) != requested \(3\)")


class ValidateOutputTests(unittest.TestCase):
    def validate(self, option, lines):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write("\n".join(lines) + "\n")
        self.addCleanup(os.unlink, f.name)
        return run(option, f.name)

    def test_the_worker_event_encoding_validates(self):
        code, output = self.validate("--validate-events", [WORKER_EVENT])
        self.assertEqual(code, 0, output)
        self.assertIn("1 completion-event values valid", output)

    def test_events_from_stdin(self):
        code, output = run("--validate-events", "-", stdin=WORKER_EVENT + "\n\n" + WORKER_EVENT + "\n")
        self.assertEqual(code, 0, output)
        self.assertIn("2 completion-event values valid", output)

    def test_events_with_inconsistent_counts_or_shapes_fail(self):
        event = json.loads(WORKER_EVENT)
        bad = [
            {**event, "successful": 2},
            {**event, "requested": 3},
            {**event, "failed_upload_ids": ["20042921", "q0VNpiNQSkG6z0lif_O1zg"]},
            {**event, "completed_at": "2026-11-28T10:00:03Z"},
            {**event, "status": "rejected", "error": "422 INVALID_FIELD"},
            {k: v for k, v in event.items() if k != "polls"},
        ]
        code, output = self.validate("--validate-events", [WORKER_EVENT] + [json.dumps(e) for e in bad] + ["{"])
        self.assertEqual(code, 1, output)
        for line in range(2, 9):
            self.assertIn(f"line {line}:", output)
        self.assertNotIn("line 1:", output)

    def test_a_rejected_and_a_timed_out_event_validate(self):
        event = json.loads(WORKER_EVENT)
        rejected = {**event, "status": "rejected", "job_id": None, "job_status": None, "successful": 0, "failed": 2,
                    "failed_upload_ids": None, "error": "INVALID_FIELD: upload is referenced", "submitted_at": None}
        timed_out = {**rejected, "status": "timed_out", "job_id": "4236",
                     "error": "JOB_TIMEOUT: no result for job 4236 within 600 seconds",
                     "submitted_at": "2026-11-28T10:00:02.130Z", "environment": "staging"}
        code, output = self.validate("--validate-events", [json.dumps(rejected), json.dumps(timed_out)])
        self.assertEqual(code, 0, output)

    def test_requests(self):
        good = ['{"upload_id":"20042921"}', '{"upload_ids":["q0VNpiNQSkG6z0lif_O1zg"],"extra":{"ignored":true}}',
                '{"upload_ids":["1"],"requested_at":"2026-11-28T10:00:00.5+01:00","environment":"staging"}']
        code, output = self.validate("--validate-requests", good)
        self.assertEqual(code, 0, output)
        code, output = self.validate("--validate-requests", good + ['{"upload_ids":[]}'])
        self.assertEqual(code, 1, output)
        self.assertIn("line 4:", output)

    def test_dead_letter_headers(self):
        headers = {"purger.error.code": "job_timeout", "purger.error.message": "no result",
                   "purger.source.topic": "upload-deletion-requests", "purger.source.partition": "5",
                   "purger.source.offset": "123456"}
        code, output = self.validate("--validate-dead-letter-headers", [json.dumps(headers)])
        self.assertEqual(code, 0, output)
        code, output = self.validate("--validate-dead-letter-headers",
                                     [json.dumps({**headers, "purger.source.offset": "12a"})])
        self.assertEqual(code, 1, output)

    def test_an_empty_file_fails(self):
        code, output = self.validate("--validate-events", [])
        self.assertEqual(code, 1, output)
        self.assertIn("empty file", output)


if __name__ == "__main__":
    unittest.main()
