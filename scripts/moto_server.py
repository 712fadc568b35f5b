"""Starts moto's server with corrections for moto bugs that real AWS does not
have and that the deployer's AWS-shaped code would trip over.

Each correction is narrow and says what AWS does instead. Everything else
about moto (including where it is kinder than AWS, or drops fields) is left
as it is: tests say so where it matters.

    python moto_server.py -H 127.0.0.1 -p PORT    (the arguments of moto_server)
"""

import collections
import sys

from moto.apigateway import exceptions as apigateway_errors
from moto.apigateway import models as apigateway
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


if __name__ == "__main__":
    base_path_mappings_of_a_new_domain_are_empty()
    a_false_patch_value_is_false()
    bucket_versioning_is_answered_as_s3_does()
    a_delete_of_what_is_gone_answers_not_found()
    deleting_a_missing_record_says_not_found()
    sys.exit(main(sys.argv[1:]))
