"""The image detail page's data: the datasets app's arrays plus this app's prediction history."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier.review import probability_history
from webapp.datasets.access import image_for
from webapp.datasets.api.image_data import image_payload


class ProbabilityRowSerializer(serializers.Serializer):
    version = serializers.IntegerField(allow_null=True, help_text="null for the default score")
    name = serializers.CharField()
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    probabilities = serializers.DictField(child=serializers.FloatField(), help_text="by class name")


class ImageDataSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    mz = serializers.FloatField(allow_null=True)
    shape = serializers.ListField(child=serializers.IntegerField(), allow_null=True, help_text="[height, width]")
    downsample = serializers.IntegerField(help_text="block size of the block mean (1 = native resolution)")
    values = serializers.ListField(child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
                                   allow_null=True, help_text="rows of values; null = not acquired")
    tic = serializers.ListField(child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
                                allow_null=True)
    tic_downsample = serializers.IntegerField()
    history = ProbabilityRowSerializer(many=True)


class ImageData(APIView):
    """The image's values (NaN = null, block-averaged to at most 256 px), the dataset's TIC
    and the image's probabilities from every model version."""

    @extend_schema(responses={200: ImageDataSerializer})
    def get(self, request, pk: int):
        image = image_for(request.user, pk)
        return Response({**image_payload(image), "history": probability_history(image)})
