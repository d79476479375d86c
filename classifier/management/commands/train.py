from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from classifier import training
from classifier.models import TrainingRun
from webapp.jobs.models import Job
from webapp.projects.models import Project


def report(fraction: float, message: str) -> None:
    print(f"{int(fraction * 100):3d}% {message}", file=sys.stderr, flush=True)


def run_job(job: Job, work, user_error: type[Exception]):
    """Run `work()` for a job started here; a failure is recorded on the job, and a user's
    mistake (`user_error`) becomes a one-line command error."""
    try:
        return work()
    except user_error as exc:
        job.fail(str(exc))
        raise CommandError(str(exc)) from None
    except Exception as exc:
        job.fail(f"{type(exc).__name__}: {exc}")
        raise


class Command(BaseCommand):
    help = (
        "Train on every labelled image of a project with cross-validation grouped by dataset, "
        "print the metrics, save and activate the final model."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument(
            "--arch",
            default="compact",
            choices=["compact", "resnet50", "densenet121", "vgg16", "inceptionresnetv2"],
        )
        parser.add_argument("--folds", type=int, default=5)
        parser.add_argument("--ensemble", type=int, default=1)
        parser.add_argument("--epochs", type=int, default=None)
        parser.add_argument(
            "--context", action="store_true", help="add the dataset's TIC as a second channel"
        )
        parser.add_argument("--force", action="store_true", help="train even if the labels did not change")
        parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
        parser.add_argument(
            "--quick",
            action="store_true",
            help="the quick update: a linear head on the stored image features, in seconds, "
            "then rescoring (the live update's work, run here)",
        )

    def handle(self, *args, **o):
        project = Project.objects.filter(slug=o["project"]).first()
        if project is None:
            raise CommandError(f"No project '{o['project']}'.")
        if o["folds"] < 2 or o["ensemble"] < 1 or (o["epochs"] is not None and o["epochs"] < 1):
            raise CommandError("--folds must be at least 2, --ensemble and --epochs at least 1.")
        if o["quick"]:
            return self.quick(project, o)
        params = {k: o[k] for k in ("arch", "folds", "ensemble", "epochs", "context")}
        job = Job.objects.create(project=project, kind=Job.Kind.TRAIN, message="command line")
        run = TrainingRun.objects.create(
            project=project, job=job, params={**training.DEFAULT_TRAIN_PARAMS, **params}
        )
        job.target_id = run.pk
        job.start()

        version = run_job(
            job,
            lambda: training.run_training(run, job=job, report=report, force=o["force"]),
            training.TrainingError,
        )
        job.finish(f"Model v{version.number}")
        if o["json"]:
            self.stdout.write(json.dumps(version.metrics, indent=2))
        else:
            self.stdout.write(format_metrics(version))

    def quick(self, project, o) -> None:
        from classifier import active

        job = Job.objects.create(project=project, kind=Job.Kind.QUICK, message="command line")
        job.start()
        version = run_job(
            job, lambda: active.run_quick_update(project, report=report), active.QuickUpdateError
        )
        job.finish(f"Quick update v{version.number}")
        if o["json"]:
            self.stdout.write(json.dumps(version.metrics, indent=2))
        else:
            self.stdout.write(
                f"Quick update v{version.number} from {version.label_total} labels "
                f"(image features of {version.params.get('features')}); every image rescored."
            )
            if version.metrics.get("overall"):
                self.stdout.write(format_metrics(version).split("\n", 1)[1])


def format_metrics(version) -> str:
    m = version.metrics
    split = (
        "cross-validation grouped by dataset"
        if version.held_out_by != "images"
        else "one dataset only: cross-validation split its images (optimistic for new datasets)"
    )
    lines = [
        f"Model v{version.number} ({version.arch}) trained on {version.label_total} labelled images "
        f"from {version.dataset_count} datasets; {split}."
    ]
    overall = m.get("overall", m)
    per_class = overall.get("per_class", {})
    if per_class:
        lines.append(f"{'class':<20}{'precision':>10}{'recall':>10}{'F1':>10}{'ROC AUC':>10}{'support':>10}")
        for name, v in per_class.items():
            lines.append(
                f"{name:<20}{_f(v.get('precision'))}{_f(v.get('recall'))}{_f(v.get('f1'))}"
                f"{_f(v.get('roc_auc'))}{v.get('support', ''):>10}"
            )
    if "accuracy" in overall:
        lines.append(f"accuracy {_f(overall['accuracy']).strip()}")
    per_group = m.get("per_group", {})
    if per_group:
        lines.append("per dataset:")
        for g, v in per_group.items():
            lines.append(
                f"  {g}: accuracy {_f(v.get('accuracy')).strip()}  F1 {_f(v.get('f1_macro', v.get('f1'))).strip()}"
            )
    for note in version.notes:
        lines.append(f"note: {note}")
    lines.append(
        f"Held-out accuracy per dataset, with intervals: "
        f"python manage.py review_accuracy --project {version.project.slug} --version {version.number}"
    )
    return "\n".join(lines)


def _f(x) -> str:
    return f"{x:>10.3f}" if isinstance(x, (int, float)) else f"{'-':>10}"
