"""Request and answer bodies of the ingestion API (multipart uploads, resumable uploads, imports).
The import's layouts and checks are the page form's (webapp/ingestion/forms.py)."""

from __future__ import annotations

from rest_framework import serializers

from webapp.ingestion.forms import LAYOUTS


class DatasetUploadSerializer(serializers.Serializer):
    imzml = serializers.FileField(help_text="the .imzML file")
    ibd = serializers.FileField(required=False, help_text="the .ibd file (required)")
    mz_list = serializers.FileField(
        required=False, help_text="CSV with an mz column; without it the top peaks are imaged"
    )
    name = serializers.CharField(required=False, max_length=200)
    ppm = serializers.FloatField(default=3.0, min_value=0.01, max_value=1000)
    top = serializers.IntegerField(default=500, min_value=1, max_value=100_000)
    tic = serializers.BooleanField(default=False)


class ImportSerializer(serializers.Serializer):
    archive = serializers.FileField(help_text="a .zip of images (gold-standard folders, flat, or channels)")
    layout = serializers.ChoiceField(choices=list(LAYOUTS), required=False)
    labels = serializers.FileField(required=False, help_text="labels CSV (file,label or Id,Target)")
    channels = serializers.CharField(required=False, help_text="channel order, e.g. red,green,blue,yellow")


class UploadInfoSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    filename = serializers.CharField()
    project = serializers.SlugField(help_text="the project's slug")
    length = serializers.IntegerField(help_text="declared size in bytes")
    offset = serializers.IntegerField(help_text="bytes received and checked: resume from here")
    crc32 = serializers.CharField(help_text="CRC-32 of the bytes received, 8 hex digits")
    complete = serializers.BooleanField()
    expires_at = serializers.DateTimeField(help_text="deleted then unless more arrives")


CRC_HELP = "CRC-32 of the whole file (8 hex digits): checked against what the server assembled"


class DatasetFromUploadsSerializer(serializers.Serializer):
    imzml = serializers.UUIDField(help_text="the finished upload of the .imzML file")
    ibd = serializers.UUIDField(help_text="the finished upload of the .ibd file")
    mz_list = serializers.UUIDField(required=False, allow_null=True, help_text="an uploaded m/z list CSV")
    imzml_crc32 = serializers.CharField(required=False, allow_blank=True, max_length=10, help_text=CRC_HELP)
    ibd_crc32 = serializers.CharField(required=False, allow_blank=True, max_length=10, help_text=CRC_HELP)
    mz_list_crc32 = serializers.CharField(required=False, allow_blank=True, max_length=10, help_text=CRC_HELP)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    ppm = serializers.FloatField(default=3.0, min_value=0.01, max_value=1000)
    top = serializers.IntegerField(default=500, min_value=1, max_value=100_000)
    tic = serializers.BooleanField(default=False)


class ImportFromUploadSerializer(serializers.Serializer):
    archive = serializers.UUIDField(help_text="the finished upload of a .zip of images")
    archive_crc32 = serializers.CharField(required=False, allow_blank=True, max_length=10, help_text=CRC_HELP)
    labels = serializers.UUIDField(required=False, allow_null=True, help_text="an uploaded labels CSV")
    labels_crc32 = serializers.CharField(required=False, allow_blank=True, max_length=10, help_text=CRC_HELP)
    layout = serializers.ChoiceField(choices=list(LAYOUTS), required=False, allow_blank=True)
    channels = serializers.CharField(
        required=False, allow_blank=True, help_text="channel order, e.g. red,green,blue"
    )
