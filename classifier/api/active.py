"""Learn while you label over REST: the images to label next, and what the live update did."""

from __future__ import annotations

from django.core.cache import cache
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier import active
from ionsieve_core.ml.active import STRATEGIES, STRATEGY_NAMES
from webapp.datasets import gallery
from webapp.datasets.access import dataset_for
from webapp.datasets.api.serializers import ImageSerializer
from webapp.datasets.api.views import schema_context
from webapp.datasets.models import IonImage
from webapp.jobs.models import Job
from webapp.projects.access import project_for

MAX_N = 200


class NextQuerySerializer(serializers.Serializer):
    n = serializers.IntegerField(default=10, min_value=1, max_value=MAX_N)
    strategy = serializers.ChoiceField(choices=list(STRATEGIES), default="active")
    mine = serializers.BooleanField(
        default=False,
        help_text="images I have not labelled (and nobody settled) instead of images nobody labelled",
    )


class NextImagesSerializer(serializers.Serializer):
    strategy = serializers.ChoiceField(choices=list(STRATEGIES))
    strategy_name = serializers.CharField(help_text="the strategy as the page names it")
    count = serializers.IntegerField(help_text="images returned")
    next = serializers.CharField(allow_null=True, help_text="always null: ask again after labelling")
    previous = serializers.CharField(allow_null=True)
    results = ImageSerializer(many=True, help_text="best first")


NEXT_PARAMS = [
    OpenApiParameter("n", OpenApiTypes.INT, description=f"how many images (1-{MAX_N}, default 10)"),
    OpenApiParameter(
        "strategy",
        OpenApiTypes.STR,
        enum=list(STRATEGIES),
        description="active (default): uncertain and unlike what is labelled; random; "
        "probability: most likely off-sample (first class) first",
    ),
    OpenApiParameter(
        "mine", OpenApiTypes.BOOL, description="images I have not labelled (default: nobody has)"
    ),
]


class NextImages(APIView):
    """The unlabelled images to label next, best first, by an acquisition strategy. Shaped like
    a gallery page (results, next = null) so the gallery's Label next mode reads it as one."""

    @extend_schema(parameters=NEXT_PARAMS, responses={200: NextImagesSerializer})
    def get(self, request, pk: int | None = None, slug: str | None = None):
        if slug is not None:
            scope = project = project_for(request.user, slug)
        else:
            scope = dataset_for(request.user, pk)
            project = scope.project
        q = NextQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        o = q.validated_data
        chosen = active.next_images(scope, o["n"], o["strategy"], user=request.user if o["mine"] else None)
        ids = [im.pk for im in chosen]
        rows = {row.pk: row for row in gallery.listing_rows(IonImage.objects.filter(pk__in=ids))}
        images = [rows[i] for i in ids if i in rows]
        gallery.attach_my_labels(images, request.user)
        data = ImageSerializer(
            images, many=True, context={"request": request, **schema_context(project)}
        ).data
        return Response(
            {
                "strategy": o["strategy"],
                "strategy_name": STRATEGY_NAMES[o["strategy"]],
                "count": len(data),
                "next": None,
                "previous": None,
                "results": data,
            }
        )


class EstimateSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    quick = serializers.BooleanField()
    labels = serializers.IntegerField(help_text="labelled images it learnt from")
    n = serializers.IntegerField(help_text="images with a held-out score")
    f1 = serializers.FloatField(allow_null=True)
    f1_ci = serializers.ListField(child=serializers.FloatField(), allow_null=True)


class LiveSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        allow_null=True, help_text="the active model version's number (null: default)"
    )
    quick = serializers.BooleanField(help_text="the active version is a quick update")
    scored_from = serializers.IntegerField(help_text="labels the active version learnt from")
    labelled = serializers.IntegerField(help_text="labelled images in the project now")
    updating = serializers.BooleanField(help_text="a live update is waiting or running")
    message = serializers.CharField(allow_blank=True, help_text="what the latest live update said")
    estimates = EstimateSerializer(
        many=True,
        help_text="held-out F1 of the latest versions, oldest first "
        "(the first class for on/off projects, macro otherwise)",
    )


class Live(APIView):
    """Cheap to poll: which version scores the project now and how its held-out estimate moved."""

    @extend_schema(responses={200: LiveSerializer})
    def get(self, request, slug: str):
        project = project_for(request.user, slug)
        act = project.model_versions.filter(is_active=True).first()
        job = project.jobs.filter(kind=Job.Kind.QUICK).order_by("-created_at").first()
        versions = list(project.model_versions.order_by("-number")[:6])[::-1]
        return Response(
            {
                "version": act.number if act else None,
                "quick": bool(act and act.quick),
                "scored_from": act.label_total if act else 0,
                "labelled": IonImage.objects.filter(dataset__project=project)
                .exclude(consensus__isnull=True)
                .count(),
                "updating": bool(job and job.is_active),
                "message": job.message if job else "",
                "estimates": [estimate(project, v) for v in versions],
            }
        )


def estimate(project, version) -> dict:
    """Held-out F1 of a version (evaluation.accuracy over the project), cached: versions never change."""
    key = f"ionsieve:held-out:{version.pk}"
    got = cache.get(key)
    if got is None:
        from classifier import evaluation

        s = evaluation.accuracy(project, version)["all"]["held_out"]
        got = {"n": s.get("n") or 0, "f1": s.get("f1"), "f1_ci": s.get("f1_ci")}
        cache.set(key, got, 24 * 3600)
    return {"number": version.number, "quick": version.quick, "labels": version.label_total, **got}
