"""Starts moto's server with corrections for moto bugs that real AWS does not
have and that the deployer's AWS-shaped code would trip over.

Each correction is narrow and says what AWS does instead. Everything else
about moto (including where it is kinder than AWS, or drops fields) is left
as it is: tests say so where it matters.

Three more changes only make it faster (one Python process serves the whole
suite; measured with py-spy on the chaos suite, these were a third of its
busy time) and change no answer.

    python moto_server.py -H 127.0.0.1 -p PORT    (the arguments of moto_server)
"""

import collections
import functools
import json
import logging
import sys
from urllib.parse import unquote

from moto.apigateway import exceptions as apigateway_errors
from moto.apigateway import models as apigateway
from moto.apigateway import responses as apigateway_responses
from moto.apigateway import urls as apigateway_urls
from moto import backends
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.route53 import exceptions as route53_errors
from moto.route53 import models as route53
from moto.s3 import responses as s3
from moto.server import main


def base_path_mappings_of_a_new_domain_are_empty():
    # moto 5.2.5 keeps mappings in a plain dict keyed by domain, created on
    # the first CreateBasePathMapping: GetBasePathMappings on a domain that
    # has none fails with HTTP 500 (KeyError). AWS answers an empty list.
    original = apigateway.APIGatewayBackend.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.base_path_mappings = collections.defaultdict(dict)

    apigateway.APIGatewayBackend.__init__ = init


def a_false_patch_value_is_false():
    # moto 5.2.5 sets disableExecuteApiEndpoint to bool("false"), which is
    # True: UpdateRestApi could never turn the execute-api endpoint back on.
    # AWS parses the patch value as a boolean.
    original = apigateway.RestAPI.apply_patch_operations

    def apply(self, patch_operations):
        original(self, patch_operations)
        for operation in patch_operations:
            if operation.get("path") == "/disableExecuteApiEndpoint" and operation.get("op") == "replace":
                self.disableExecuteApiEndpoint = str(operation.get("value")).lower() == "true"

    apigateway.RestAPI.apply_patch_operations = apply


def bucket_versioning_is_answered_as_s3_does():
    # moto 5.2.5 names the root of the GetBucketVersioning answer
    # GetBucketVersioningResponse, which no SDK parser reads; S3 answers
    # <VersioningConfiguration> with a <Status> once versioning was set.
    def get_bucket_versioning(self):
        status = self.backend.get_bucket_versioning(self.bucket_name)
        inner = f"<Status>{status}</Status>" if status else ""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</VersioningConfiguration>'
        )
        return 200, {"Content-Type": "application/xml"}, body

    s3.S3Response.get_bucket_versioning = get_bucket_versioning


def a_delete_of_what_is_gone_answers_not_found():
    # moto 5.2.5 answers DeleteRestApi, DeleteResource and DeleteAuthorizer
    # of an id that does not exist with HTTP 500 (a KeyError). AWS answers
    # 404 NotFoundException, which is what a delete sent again after its
    # first answer was lost gets.
    backend = apigateway.APIGatewayBackend
    delete_rest_api, delete_resource, delete_authorizer = (
        backend.delete_rest_api,
        backend.delete_resource,
        backend.delete_authorizer,
    )

    def rest_api_gone(self, function_id):
        if function_id not in self.apis:
            raise apigateway_errors.RestAPINotFound()
        return delete_rest_api(self, function_id)

    def resource_gone(self, function_id, resource_id):
        if resource_id not in self.get_rest_api(function_id).resources:
            raise apigateway_errors.ResourceIdNotFoundException()
        return delete_resource(self, function_id, resource_id)

    def authorizer_gone(self, restapi_id, authorizer_id):
        if authorizer_id not in self.get_rest_api(restapi_id).authorizers:
            raise apigateway_errors.AuthorizerNotFoundException()
        return delete_authorizer(self, restapi_id, authorizer_id)

    backend.delete_rest_api = rest_api_gone
    backend.delete_resource = resource_gone
    backend.delete_authorizer = authorizer_gone


def deleting_a_missing_record_says_not_found():
    # moto 5.2.5 answers a Route 53 DELETE of a record set that does not
    # exist with InvalidInput ("Expected exactly one of [AliasTarget, ...]").
    # AWS answers InvalidChangeBatch "Tried to delete resource record set
    # [...] but it was not found", which is what a delete sent again after
    # its first answer was lost gets.
    original = route53.Route53Backend.change_resource_record_sets

    def change(self, zoneid, change_list):
        zone = self.get_hosted_zone(zoneid)
        for value in change_list:
            if value["Action"] != "DELETE":
                continue
            record_set = value["ResourceRecordSet"]
            name = record_set["Name"].rstrip(".").lower() + "."
            kind = record_set["Type"]
            exists = any(r.name.rstrip(".").lower() + "." == name and r.type == kind for r in zone.rrsets)
            if not exists:
                raise route53_errors.Route53ClientError(
                    "InvalidChangeBatch",
                    f"[Tried to delete resource record set [name='{name}', type='{kind}'] but it was not found]",
                )
        return original(self, zoneid, change_list)

    route53.Route53Backend.change_resource_record_sets = change


def custom_domains_keep_mutual_tls_and_can_be_updated_and_tagged():
    # moto 5.2.5 drops a custom domain's mutualTlsAuthentication and
    # ownershipVerificationCertificateArn, answers UpdateDomainName with
    # HTTP 500 (not implemented), and TagResource/UntagResource/GetTags on a
    # domain ARN with 404. AWS keeps and reports both fields, updates them
    # (and the certificate and TLS policy) by patch, and tags domains.
    responses = apigateway_responses.APIGatewayResponse
    create = responses.create_domain_name
    to_json = apigateway.DomainName.to_json

    def create_domain_name(self):
        answer = create(self)
        domain = self.backend.get_domain_name(self._get_param("domainName"))
        mtls = self._get_param("mutualTlsAuthentication")
        if mtls:
            domain.mutual_tls = {k: v for k, v in mtls.items() if k in ("truststoreUri", "truststoreVersion")}
            domain.mutual_tls["truststoreWarnings"] = []
        domain.ownership_verification = self._get_param("ownershipVerificationCertificateArn")
        return answer[0], answer[1], json.dumps(domain.to_json())

    def domain_to_json(self):
        answer = to_json(self)
        if getattr(self, "mutual_tls", None):
            answer["mutualTlsAuthentication"] = self.mutual_tls
        if getattr(self, "ownership_verification", None):
            answer["ownershipVerificationCertificateArn"] = self.ownership_verification
        return answer

    def update_domain_name(self):
        domain = self.backend.get_domain_name(unquote(self.path.split("/")[2]))
        for operation in self._get_param("patchOperations") or []:
            path, value = operation.get("path"), operation.get("value")
            if path.startswith("/mutualTlsAuthentication/"):
                domain.mutual_tls = getattr(domain, "mutual_tls", None) or {"truststoreWarnings": []}
                domain.mutual_tls[path.rsplit("/", 1)[1]] = value
            elif path == "/regionalCertificateArn":
                domain.regional_certificate_arn = value
            elif path == "/securityPolicy":
                domain.security_policy = value
            elif path == "/ownershipVerificationCertificateArn":
                domain.ownership_verification = value
            else:
                raise apigateway_errors.BadRequestException(f"Invalid patch path {path}")
        return json.dumps(domain.to_json())

    def domain_of(self):
        parts = unquote(self.path.split("/tags/")[1]).split("/")
        if "domainnames" in parts:
            return self.backend.get_domain_name(parts[parts.index("domainnames") + 1])
        return None

    get_tags, tag_resource, untag_resource = responses.get_tags, responses.tag_resource, responses.untag_resource

    def get_domain_tags(self):
        domain = domain_of(self)
        return json.dumps({"tags": domain.tags or {}}) if domain else get_tags(self)

    def tag_domain(self):
        domain = domain_of(self)
        if domain is None:
            return tag_resource(self)
        domain.tags = {**(domain.tags or {}), **(self._get_param("tags") or {})}
        return json.dumps({"item": domain.tags})

    def untag_domain(self):
        domain = domain_of(self)
        if domain is None:
            return untag_resource(self)
        keys = self.querystring.get("tagKeys") or []
        domain.tags = {k: v for k, v in (domain.tags or {}).items() if k not in keys}
        return json.dumps({"item": ""})

    # The route for a domain's ARN (its `/` are not escaped once decoded).
    apigateway_urls.url_paths[
        "{0}/tags/arn:(?P<partition>[^/]+):apigateway:(?P<region_name>[^/]+)::/domainnames/(?P<domain_name>[^/]+)$"
    ] = responses.dispatch
    responses.create_domain_name = create_domain_name
    responses.update_domain_name = update_domain_name
    responses.get_tags = get_domain_tags
    responses.tag_resource = tag_domain
    responses.untag_resource = untag_domain
    apigateway.DomainName.to_json = domain_to_json


def the_list_of_services_is_read_once():
    # moto lists its own package directory (a listdir and an isdir per
    # entry) to route every request, under the lock that serialises routing.
    listed = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: listed


def one_rsa_key_per_size():
    # RequestCertificate makes a 2048-bit RSA key for its (self-signed)
    # certificate. The keys are never secret here; one per size is enough.
    rsa.generate_private_key = functools.cache(rsa.generate_private_key)


def no_access_log():
    # A log line per request; errors (and their tracebacks) are still logged.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


if __name__ == "__main__":
    base_path_mappings_of_a_new_domain_are_empty()
    a_false_patch_value_is_false()
    bucket_versioning_is_answered_as_s3_does()
    a_delete_of_what_is_gone_answers_not_found()
    deleting_a_missing_record_says_not_found()
    custom_domains_keep_mutual_tls_and_can_be_updated_and_tagged()
    the_list_of_services_is_read_once()
    one_rsa_key_per_size()
    no_access_log()
    sys.exit(main(sys.argv[1:]))
