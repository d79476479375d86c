from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from classifier import evaluation
from classifier.api.review import accuracy_payload
from webapp.projects.models import Project


class Command(BaseCommand):
    help = (
        "How accurate a model version (or the default score) is, per dataset and over the project: "
        "held out (the headline), since training, and training fit (optimistic)."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # --version names a model version here, not Django's own version.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument(
            "--version", default=None, help="model number or 'default' (default: the active version)"
        )
        parser.add_argument("--json", action="store_true", help="print the object the review API returns")

    def handle(self, *args, **o):
        project = Project.objects.filter(slug=o["project"]).first()
        if project is None:
            raise CommandError(f"No project '{o['project']}'.")
        try:
            version = evaluation.resolve_version(project, o["version"])
        except (evaluation.ReviewError, Http404) as exc:
            raise CommandError(
                f"{exc} (versions: {', '.join(str(n) for n in project.model_versions.values_list('number', flat=True)) or 'none'})"
            ) from None
        payload = accuracy_payload(project, version)
        if o["json"]:
            self.stdout.write(json.dumps(payload))
        else:
            self.stdout.write(format_table(payload, project))


MEASURE_NAMES = {
    "held_out": "held out",
    "since_training": "since training",
    "training_fit": "training fit (optimistic)",
}


def format_table(payload: dict, project: Project) -> str:
    what = f"F1 of {project.classes[0]}" if project.task == "binary" else "macro F1"
    lines = [
        f"{'version ' + payload['version'] if payload['version'] != 'default' else 'default score'}: "
        f"{what} with its 95% interval",
        f"{'dataset':<30}{'measure':<28}{'n':>6}  {'F1 (95% interval)':<22}{'precision':>10}{'recall':>8}"
        f"{'accuracy':>10}{'ROC AUC':>9}",
    ]
    rows = [("all datasets", payload["all"])] + [(d["dataset"], d) for d in payload["datasets"]]
    for name, m in rows:
        for key, label in MEASURE_NAMES.items():
            s = m[key]
            ci = f" ({s['f1_ci'][0]:.2f}–{s['f1_ci'][1]:.2f})" if s["f1_ci"] else ""
            lines.append(
                f"{name[:29]:<30}{label:<28}{s['n']:>6}  {_f(s['f1']) + ci:<22}{_f(s['precision']):>10}"
                f"{_f(s['recall']):>8}{_f(s['accuracy']):>10}{_f(s['auc']):>9}"
            )
    return "\n".join(lines)


def _f(x) -> str:
    return "–" if x is None else f"{x:.2f}"
