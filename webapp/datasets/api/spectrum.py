"""A dataset's mean spectrum over REST (the numbers: webapp/datasets/pixels.py)."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.datasets.access import dataset_for
from webapp.datasets.api.serializers import SpectrumSerializer
from webapp.datasets.pixels import spectrum


class DatasetSpectrum(APIView):
    """The dataset's mean spectrum, at most 5,000 points (each the maximum of its m/z bin)."""

    @extend_schema(responses={200: SpectrumSerializer})
    def get(self, request, pk: int):
        dataset = dataset_for(request.user, pk)
        result = spectrum(dataset)
        if result is None:
            raise Http404("This dataset has no mean spectrum.")
        mz, intensity = result
        return Response(
            {"mz": [round(float(x), 5) for x in mz], "intensity": [float(f"{x:.6g}") for x in intensity]}
        )
