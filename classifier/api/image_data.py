"""The image detail page's data: the datasets app's arrays plus this app's prediction history."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier.review import probability_history
from webapp.datasets.access import image_for
from webapp.datasets.api.image_data import image_payload


class ImageData(APIView):
    """The image's values (NaN = null, block-averaged to at most 256 px), the dataset's TIC
    and the image's probabilities from every model version."""

    @extend_schema(responses={200: dict})
    def get(self, request, pk: int):
        image = image_for(request.user, pk)
        return Response({**image_payload(image), "history": probability_history(image)})
