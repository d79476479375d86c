"""Resumable uploads over tus 1.0 (webapp/ingestion/resumable.py), and the two calls that turn
finished uploads into a dataset or an image import. The one-request multipart uploads
(`POST /api/projects/{slug}/datasets/`, `/imports/`) keep working beside them."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.datasets.api.serializers import DatasetSerializer, JobStartedSerializer
from webapp.ingestion import resumable, services
from webapp.ingestion.api.serializers import (
    DatasetFromUploadsSerializer,
    ImportFromUploadSerializer,
    UploadInfoSerializer,
)
from webapp.ingestion.api.views import refused
from webapp.ingestion.body import body_reader
from webapp.ingestion.forms import checked_import
from webapp.projects.access import project_for
from webapp.projects.models import Role

TUS_HEADERS = [
    OpenApiParameter("Tus-Resumable", str, OpenApiParameter.HEADER, required=True, enum=["1.0.0"]),
]


def _info(upload) -> dict:
    return {
        "id": upload.pk,
        "filename": upload.filename,
        "project": upload.project.slug,
        "length": upload.length,
        "offset": upload.offset,
        "crc32": f"{upload.crc32:08x}",
        "complete": upload.complete,
        "expires_at": upload.expires_at,
    }


def _tus(response: Response) -> Response:
    response["Tus-Resumable"] = resumable.TUS_VERSION
    response["Cache-Control"] = "no-store"
    return response


def _refused(exc: resumable.UploadRefused) -> Response:
    return _tus(Response({"detail": services.sentence(str(exc))}, status=exc.status))


def _capabilities(response: Response) -> Response:
    from django.conf import settings

    response["Tus-Version"] = resumable.TUS_VERSION
    response["Tus-Extension"] = resumable.EXTENSIONS
    response["Tus-Checksum-Algorithm"] = ",".join(resumable.ALGORITHMS)
    response["Tus-Max-Size"] = str(settings.IONSIEVE_MAX_UPLOAD_BYTES)
    return _tus(response)


def _check_version(request) -> None:
    version = request.headers.get("Tus-Resumable")
    if version != resumable.TUS_VERSION:
        raise resumable.UploadRefused(
            f"this server speaks tus {resumable.TUS_VERSION} (header Tus-Resumable); "
            f"the request said {version or 'nothing'}",
            412,
        )


class Uploads(APIView):
    """Start a resumable upload (tus 1.0 creation): headers `Upload-Length` and `Upload-Metadata`
    with `filename` and `project` (the project's slug), base64-encoded as tus says."""

    @extend_schema(exclude=True)
    def options(self, request, *args, **kwargs):
        return _capabilities(Response(status=status.HTTP_204_NO_CONTENT))

    @extend_schema(
        request=None,
        parameters=[
            *TUS_HEADERS,
            OpenApiParameter("Upload-Length", int, OpenApiParameter.HEADER, required=True),
            OpenApiParameter(
                "Upload-Metadata",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="filename <base64>,project <base64 slug>[,crc32 <base64 of the whole "
                "file's CRC-32 as 8 hex digits: checked when the last part arrives>]",
            ),
        ],
        responses={201: OpenApiResponse(description="created; its address is in the Location header")},
    )
    def post(self, request):
        try:
            _check_version(request)
            if "Upload-Defer-Length" in request.headers:
                raise resumable.UploadRefused("give the file's size (Upload-Length) when starting the upload")
            length = resumable.parse_int_header(request.headers.get("Upload-Length"), "Upload-Length")
            meta = resumable.parse_metadata(request.headers.get("Upload-Metadata"))
            if not meta.get("project"):
                raise resumable.UploadRefused("say which project the file is for (Upload-Metadata: project)")
            project = project_for(request.user, meta["project"], need=Role.ANNOTATOR)
            upload = resumable.create(
                request.user,
                project,
                length=length,
                filename=meta.get("filename", ""),
                crc32=meta.get("crc32"),
            )
        except resumable.UploadRefused as exc:
            return _refused(exc)
        response = Response(status=status.HTTP_201_CREATED)
        response["Location"] = request.build_absolute_uri(f"/api/uploads/{upload.pk}/")
        response["Upload-Expires"] = resumable.expires_header(upload)
        response["Upload-Offset"] = "0"
        return _tus(response)


class UploadDetail(APIView):
    """One resumable upload: HEAD (or GET) says where to resume, PATCH sends the next part
    (`Upload-Offset`, optional `Upload-Checksum`), DELETE cancels it and frees its space."""

    @extend_schema(exclude=True)
    def options(self, request, *args, **kwargs):
        return _capabilities(Response(status=status.HTTP_204_NO_CONTENT))

    def _get(self, request, pk):
        return resumable.get(request.user, pk)

    @extend_schema(exclude=True)
    def head(self, request, pk):
        try:
            upload = self._get(request, pk)
        except resumable.UploadRefused as exc:
            return _refused(exc)
        response = Response(status=status.HTTP_200_OK)
        response["Upload-Offset"] = str(upload.offset)
        response["Upload-Length"] = str(upload.length)
        response["Upload-Expires"] = resumable.expires_header(upload)
        return _tus(response)

    @extend_schema(responses={200: UploadInfoSerializer})
    def get(self, request, pk):
        try:
            upload = self._get(request, pk)
        except resumable.UploadRefused as exc:
            return _refused(exc)
        return _tus(Response(UploadInfoSerializer(_info(upload)).data))

    @extend_schema(
        request={"application/offset+octet-stream": bytes},
        parameters=[
            *TUS_HEADERS,
            OpenApiParameter("Upload-Offset", int, OpenApiParameter.HEADER, required=True),
            OpenApiParameter(
                "Upload-Checksum",
                str,
                OpenApiParameter.HEADER,
                description="<sha1|sha256|md5|crc32> <base64 digest of this part>; a part that does not "
                "match is discarded (460)",
            ),
        ],
        responses={204: OpenApiResponse(description="stored; the new offset is in Upload-Offset")},
    )
    def patch(self, request, pk):
        try:
            upload = self._get(request, pk)  # whose upload first: others learn nothing more
            _check_version(request)
            if request.content_type != "application/offset+octet-stream":
                raise resumable.UploadRefused("send the file's bytes as application/offset+octet-stream", 415)
            offset = resumable.parse_int_header(request.headers.get("Upload-Offset"), "Upload-Offset")
            checksum = resumable.Checksum.parse(request.headers.get("Upload-Checksum"))
            raw_length = request.META.get("CONTENT_LENGTH")
            content_length = int(raw_length) if raw_length and raw_length.isdigit() else None
            # The raw body (no parser, no copy of the part in memory or on disk; straight from the
            # socket under gunicorn: ingestion/body.py).
            read, close = body_reader(request._request)
            try:
                upload = resumable.append(upload, offset, read, content_length, checksum)
            finally:
                close()
        except resumable.UploadRefused as exc:
            return _refused(exc)
        response = Response(status=status.HTTP_204_NO_CONTENT)
        response["Upload-Offset"] = str(upload.offset)
        response["Upload-Expires"] = resumable.expires_header(upload)
        return _tus(response)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk):
        try:
            upload = self._get(request, pk)
        except resumable.UploadRefused as exc:
            return _refused(exc)
        resumable.discard(upload)
        return _tus(Response(status=status.HTTP_204_NO_CONTENT))


# ---------------------------------------------------------------------- finished uploads -> work
class DatasetFromUploads(APIView):
    """Make a dataset of finished resumable uploads (each checked: yours, this project's,
    complete, CRC-32 as sent; the .imzML read against the .ibd: UUID, sizes, offsets) and start
    processing. Nothing is created if any check fails."""

    @extend_schema(request=DatasetFromUploadsSerializer, responses={202: DatasetSerializer})
    def post(self, request, slug: str):
        project = project_for(request.user, slug, need=Role.ANNOTATOR)
        ser = DatasetFromUploadsSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        roles = [("imzml", "the .imzML file"), ("ibd", "the .ibd file"), ("mz_list", "the m/z list")]
        taken, files = [], {}
        try:
            for key, role in roles:
                if d.get(key):
                    upload, received = resumable.take(
                        request.user, project, d[key], role=role, crc32=d.get(f"{key}_crc32")
                    )
                    taken.append(upload)
                    files[key] = received
            if len({u.pk for u in taken}) != len(taken):
                raise resumable.UploadRefused("the same upload was given for two files")
            services.check_upload_names(files["imzml"].name, files["ibd"].name)
            resumable.check_imzml_pair(files["imzml"], files["ibd"])
        except (resumable.UploadRefused, services.UploadError) as exc:
            raise refused(exc) from None
        try:
            dataset = services.dataset_from_upload(project, request.user, files, d)
        except services.UploadError as exc:
            raise refused(exc) from None
        resumable.consumed(taken)
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_202_ACCEPTED)


class ImportFromUpload(APIView):
    """Import a finished resumable upload of a .zip of images as a job (all or nothing)."""

    @extend_schema(request=ImportFromUploadSerializer, responses={202: JobStartedSerializer})
    def post(self, request, slug: str):
        project = project_for(request.user, slug, need=Role.ANNOTATOR)
        ser = ImportFromUploadSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        try:
            upload, archive = resumable.take(
                request.user, project, d["archive"], role="the archive", crc32=d.get("archive_crc32")
            )
            taken, labels = [upload], None
            if d.get("labels"):
                lab_upload, labels = resumable.take(
                    request.user, project, d["labels"], role="the labels CSV", crc32=d.get("labels_crc32")
                )
                taken.append(lab_upload)
            picture_import = checked_import(archive, d.get("layout"), labels, d.get("channels"))
        except (resumable.UploadRefused, services.UploadError) as exc:
            raise refused(exc) from None
        job = picture_import.start(project, request.user)
        resumable.consumed(taken)
        return Response({"job": job.pk}, status=status.HTTP_202_ACCEPTED)
