"""Review endpoints: model metrics against current labels, and annotator agreement."""
from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier import review
from webapp.projects.access import project_for


class Review(APIView):
    """Metrics of one model version (`version=N`, `default`, or the active one) per dataset."""

    @extend_schema(
        parameters=[OpenApiParameter("version", str, description="model number, or 'default'; default: active"),
                    OpenApiParameter("dataset", int, description="only this dataset")],
        responses={200: dict},
    )
    def get(self, request, slug: str):
        project = project_for(request.user, slug)
        try:
            version = review.resolve_version(project, request.query_params.get("version"))
        except review.ReviewError as exc:
            raise ValidationError({"version": [str(exc)]}) from None
        dataset_id = None
        if request.query_params.get("dataset"):
            try:
                dataset_id = int(request.query_params["dataset"])
            except ValueError:
                raise ValidationError({"dataset": ["Give a dataset id."]}) from None
            if not project.datasets.filter(pk=dataset_id).exists():
                raise Http404("No such dataset in this project.")
        return Response(review.review(project, version, dataset_id))


class Annotators(APIView):
    """Per annotator: label count, Cohen's kappa with each other annotator, agreement with the model."""

    @extend_schema(responses={200: dict})
    def get(self, request, slug: str):
        project = project_for(request.user, slug)
        return Response(review.annotators(project))
