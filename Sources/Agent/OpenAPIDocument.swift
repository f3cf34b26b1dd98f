/// The OpenAPI 3.1 description of the agent's HTTP API, served at `/v1/openapi.json` and
/// committed as docs/openapi.json (a test keeps the two equal and calls every path it lists).
enum OpenAPIDocument {
    static let json = #"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "Flotilla agent API",
    "version": "v1",
    "description": "agentd's HTTP API. It listens on a unix socket that only root can use (default /run/flotilla/api.sock) and, optionally, on TCP, where every request needs `Authorization: Bearer <token>`. Errors share one shape (APIError). Reads are served from the agent's local replica; list endpoints take Consul-style blocking queries (?index=N&wait=30s) and answer with X-Flotilla-Index."
  },
  "paths": {
    "/v1/version": {
      "get": {
        "operationId": "version",
        "summary": "The agent's version",
        "responses": {
          "200": {
            "description": "OK",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/VersionInfo"
                }
              }
            }
          }
        }
      }
    },
    "/v1/openapi.json": {
      "get": {
        "operationId": "openapi",
        "summary": "This document",
        "responses": {
          "200": {
            "description": "OpenAPI 3.1",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            }
          }
        }
      }
    },
    "/metrics": {
      "get": {
        "operationId": "metrics",
        "summary": "Prometheus metrics",
        "responses": {
          "200": {
            "description": "Prometheus text format",
            "content": {
              "text/plain": {
                "schema": {
                  "type": "string"
                }
              }
            }
          }
        }
      }
    },
    "/v1/status": {
      "get": {
        "operationId": "status",
        "summary": "The whole cluster at a glance",
        "parameters": [
          {
            "name": "index",
            "in": "query",
            "required": false,
            "schema": {
              "type": "integer",
              "minimum": 0
            },
            "description": "Blocking query: wait until the state changes past this index (X-Flotilla-Index of an earlier answer)."
          },
          {
            "name": "wait",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string",
              "example": "30s"
            },
            "description": "How long a blocking query waits at most (default 60s, at most 5m)."
          },
          {
            "name": "consistent",
            "in": "query",
            "required": false,
            "schema": {
              "type": "boolean"
            },
            "description": "Read behind a Raft ReadIndex barrier (linearizable)."
          }
        ],
        "responses": {
          "200": {
            "description": "OK",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ClusterStatus"
                }
              }
            }
          },
          "default": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          }
        }
      }
    },
    "/v1/applications": {
      "get": {
        "operationId": "listApplications",
        "summary": "Every application",
        "parameters": [
          {
            "name": "index",
            "in": "query",
            "required": false,
            "schema": {
              "type": "integer",
              "minimum": 0
            },
            "description": "Blocking query: wait until the state changes past this index (X-Flotilla-Index of an earlier answer)."
          },
          {
            "name": "wait",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string",
              "example": "30s"
            },
            "description": "How long a blocking query waits at most (default 60s, at most 5m)."
          },
          {
            "name": "consistent",
            "in": "query",
            "required": false,
            "schema": {
              "type": "boolean"
            },
            "description": "Read behind a Raft ReadIndex barrier (linearizable)."
          }
        ],
        "responses": {
          "200": {
            "description": "OK",
            "content": {
              "application/json": {
                "schema": {
                  "type": "array",
                  "items": {
                    "$ref": "#/components/schemas/ApplicationInfo"
                  }
                }
              }
            }
          },
          "default": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          }
        }
      }
    },
    "/v1/applications/{name}": {
      "parameters": [
        {
          "name": "name",
          "in": "path",
          "required": true,
          "schema": {
            "type": "string"
          },
          "description": "The application's name"
        }
      ],
      "get": {
        "operationId": "getApplication",
        "summary": "One application",
        "parameters": [
          {
            "name": "index",
            "in": "query",
            "required": false,
            "schema": {
              "type": "integer",
              "minimum": 0
            },
            "description": "Blocking query: wait until the state changes past this index (X-Flotilla-Index of an earlier answer)."
          },
          {
            "name": "wait",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string",
              "example": "30s"
            },
            "description": "How long a blocking query waits at most (default 60s, at most 5m)."
          },
          {
            "name": "consistent",
            "in": "query",
            "required": false,
            "schema": {
              "type": "boolean"
            },
            "description": "Read behind a Raft ReadIndex barrier (linearizable)."
          },
          {
            "name": "detail",
            "in": "query",
            "required": false,
            "schema": {
              "type": "boolean"
            },
            "description": "Include revisions and the manifest."
          }
        ],
        "responses": {
          "200": {
            "description": "OK",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ApplicationInfo"
                }
              }
            }
          },
          "404": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          },
          "default": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          }
        }
      },
      "put": {
        "operationId": "applyApplication",
        "summary": "Apply a manifest: every service of the application changes in one Raft entry, or none does",
        "parameters": [
          {
            "name": "revision",
            "in": "query",
            "required": false,
            "schema": {
              "type": "integer",
              "minimum": 0
            },
            "description": "Check-and-set: refuse unless the application is at this revision (0: it must not exist)."
          },
          {
            "name": "dryRun",
            "in": "query",
            "required": false,
            "schema": {
              "type": "boolean"
            },
            "description": "Show what would change without changing anything."
          }
        ],
        "requestBody": {
          "required": true,
          "description": "The manifest (docs/manifest.md)",
          "content": {
            "application/json": {
              "schema": {
                "$ref": "https://flotilla.dev/schemas/manifest-v1.json"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "OK",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ApplyResult"
                }
              }
            }
          },
          "400": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          },
          "409": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          },
          "default": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          }
        }
      },
      "delete": {
        "operationId": "deleteApplication",
        "summary": "Delete an application and stop its instances",
        "parameters": [
          {
            "name": "revision",
            "in": "query",
            "required": false,
            "schema": {
              "type": "integer",
              "minimum": 0
            },
            "description": "Check-and-set revision."
          }
        ],
        "responses": {
          "200": {
            "description": "OK",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/CommandOutcome"
                }
              }
            }
          },
          "404": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          },
          "409": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          },
          "default": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          }
        }
      }
    },
    "/v1/applications/{name}/services/{service}": {
      "parameters": [
        {
          "name": "name",
          "in": "path",
          "required": true,
          "schema": {
            "type": "string"
          },
          "description": "The application"
        },
        {
          "name": "service",
          "in": "path",
          "required": true,
          "schema": {
            "type": "string"
          },
          "description": "The service"
        }
      ],
      "get": {
        "operationId": "describeService",
        "summary": "A service: status, manifest and instances",
        "parameters": [
          {
            "name": "index",
            "in": "query",
            "required": false,
            "schema": {
              "type": "integer",
              "minimum": 0
            },
            "description": "Blocking query: wait until the state changes past this index (X-Flotilla-Index of an earlier answer)."
          },
          {
            "name": "wait",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string",
              "example": "30s"
            },
            "description": "How long a blocking query waits at most (default 60s, at most 5m)."
          },
          {
            "name": "consistent",
            "in": "query",
            "required": false,
            "schema": {
              "type": "boolean"
            },
            "description": "Read behind a Raft ReadIndex barrier (linearizable)."
          }
        ],
        "responses": {
          "200": {
            "description": "OK",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ServiceDescription"
                }
              }
            }
          },
          "404": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          },
          "default": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          }
        }
      }
    },
    "/v1/applications/{name}/services/{service}/scale": {
      "parameters": [
        {
          "name": "name",
          "in": "path",
          "required": true,
          "schema": {
            "type": "string"
          },
          "description": "The application"
        },
        {
          "name": "service",
          "in": "path",
          "required": true,
          "schema": {
            "type": "string"
          },
          "description": "The service"
        }
      ],
      "post": {
        "operationId": "scaleService",
        "summary": "Set the number of instances (until the next apply)",
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/ScaleRequest"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "OK",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/CommandOutcome"
                }
              }
            }
          },
          "400": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          },
          "404": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          },
          "default": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          }
        }
      }
    },
    "/v1/applications/{name}/services/{service}/restart": {
      "parameters": [
        {
          "name": "name",
          "in": "path",
          "required": true,
          "schema": {
            "type": "string"
          },
          "description": "The application"
        },
        {
          "name": "service",
          "in": "path",
          "required": true,
          "schema": {
            "type": "string"
          },
          "description": "The service"
        }
      ],
      "post": {
        "operationId": "restartService",
        "summary": "Replace every instance",
        "responses": {
          "200": {
            "description": "OK",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/CommandOutcome"
                }
              }
            }
          },
          "404": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          },
          "default": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          }
        }
      }
    },
    "/v1/applications/{name}/services/{service}/stop": {
      "parameters": [
        {
          "name": "name",
          "in": "path",
          "required": true,
          "schema": {
            "type": "string"
          },
          "description": "The application"
        },
        {
          "name": "service",
          "in": "path",
          "required": true,
          "schema": {
            "type": "string"
          },
          "description": "The service"
        }
      ],
      "post": {
        "operationId": "stopService",
        "summary": "Stop every instance, keeping the service (a scale to zero)",
        "responses": {
          "200": {
            "description": "OK",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/CommandOutcome"
                }
              }
            }
          },
          "404": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          },
          "default": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          }
        }
      }
    },
    "/v1/instances": {
      "get": {
        "operationId": "listInstances",
        "summary": "Instances, optionally filtered",
        "parameters": [
          {
            "name": "index",
            "in": "query",
            "required": false,
            "schema": {
              "type": "integer",
              "minimum": 0
            },
            "description": "Blocking query: wait until the state changes past this index (X-Flotilla-Index of an earlier answer)."
          },
          {
            "name": "wait",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string",
              "example": "30s"
            },
            "description": "How long a blocking query waits at most (default 60s, at most 5m)."
          },
          {
            "name": "consistent",
            "in": "query",
            "required": false,
            "schema": {
              "type": "boolean"
            },
            "description": "Read behind a Raft ReadIndex barrier (linearizable)."
          },
          {
            "name": "application",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string"
            },
            "description": "Only this application's."
          },
          {
            "name": "service",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string"
            },
            "description": "Only this service's."
          },
          {
            "name": "node",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string"
            },
            "description": "Only this node's."
          }
        ],
        "responses": {
          "200": {
            "description": "OK",
            "content": {
              "application/json": {
                "schema": {
                  "type": "array",
                  "items": {
                    "$ref": "#/components/schemas/InstanceInfo"
                  }
                }
              }
            }
          },
          "default": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          }
        }
      }
    },
    "/v1/instances/{id}": {
      "parameters": [
        {
          "name": "id",
          "in": "path",
          "required": true,
          "schema": {
            "type": "string"
          },
          "description": "The instance id"
        }
      ],
      "get": {
        "operationId": "getInstance",
        "summary": "One instance",
        "responses": {
          "200": {
            "description": "OK",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/InstanceInfo"
                }
              }
            }
          },
          "404": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          },
          "default": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          }
        }
      }
    },
    "/v1/instances/{id}/logs": {
      "parameters": [
        {
          "name": "id",
          "in": "path",
          "required": true,
          "schema": {
            "type": "string"
          },
          "description": "The instance id"
        }
      ],
      "get": {
        "operationId": "instanceLogs",
        "summary": "An instance's output",
        "parameters": [
          {
            "name": "tail",
            "in": "query",
            "required": false,
            "schema": {
              "type": "integer",
              "minimum": 0
            },
            "description": "Only the last N lines."
          },
          {
            "name": "since",
            "in": "query",
            "required": false,
            "schema": {
              "type": "integer"
            },
            "description": "Only lines written at or after this Unix time in milliseconds."
          },
          {
            "name": "follow",
            "in": "query",
            "required": false,
            "schema": {
              "type": "boolean"
            },
            "description": "Keep the response open and stream new lines as NDJSON."
          }
        ],
        "responses": {
          "200": {
            "description": "OK",
            "content": {
              "application/json": {
                "schema": {
                  "type": "array",
                  "items": {
                    "$ref": "#/components/schemas/LogLine"
                  }
                }
              }
            }
          },
          "404": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          },
          "default": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          }
        }
      }
    },
    "/v1/nodes": {
      "get": {
        "operationId": "listNodes",
        "summary": "The cluster's nodes",
        "parameters": [
          {
            "name": "index",
            "in": "query",
            "required": false,
            "schema": {
              "type": "integer",
              "minimum": 0
            },
            "description": "Blocking query: wait until the state changes past this index (X-Flotilla-Index of an earlier answer)."
          },
          {
            "name": "wait",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string",
              "example": "30s"
            },
            "description": "How long a blocking query waits at most (default 60s, at most 5m)."
          },
          {
            "name": "consistent",
            "in": "query",
            "required": false,
            "schema": {
              "type": "boolean"
            },
            "description": "Read behind a Raft ReadIndex barrier (linearizable)."
          }
        ],
        "responses": {
          "200": {
            "description": "OK",
            "content": {
              "application/json": {
                "schema": {
                  "type": "array",
                  "items": {
                    "$ref": "#/components/schemas/NodeInfo"
                  }
                }
              }
            }
          },
          "default": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          }
        }
      }
    },
    "/v1/events": {
      "get": {
        "operationId": "events",
        "summary": "Recent cluster events, or a server-sent event stream of new ones",
        "parameters": [
          {
            "name": "after",
            "in": "query",
            "required": false,
            "schema": {
              "type": "integer",
              "minimum": 0
            },
            "description": "Only events after this index."
          },
          {
            "name": "stream",
            "in": "query",
            "required": false,
            "schema": {
              "type": "boolean"
            },
            "description": "Stream (text/event-stream) instead of answering with the recent ones."
          }
        ],
        "responses": {
          "200": {
            "description": "OK",
            "content": {
              "application/json": {
                "schema": {
                  "type": "array",
                  "items": {
                    "$ref": "#/components/schemas/ClusterEvent"
                  }
                }
              }
            }
          },
          "default": {
            "description": "An error, in the API's one shape",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/APIError"
                }
              }
            }
          }
        }
      }
    }
  },
  "components": {
    "schemas": {
      "APIError": {
        "type": "object",
        "properties": {
          "code": {
            "type": "string"
          },
          "message": {
            "type": "string"
          },
          "path": {
            "type": "string"
          },
          "issues": {
            "type": "array",
            "items": {
              "type": "object",
              "properties": {
                "path": {
                  "type": "string"
                },
                "message": {
                  "type": "string"
                }
              },
              "required": [
                "path",
                "message"
              ]
            }
          },
          "currentRevision": {
            "type": "integer"
          }
        },
        "required": [
          "code",
          "message",
          "issues"
        ]
      },
      "VersionInfo": {
        "type": "object",
        "properties": {
          "version": {
            "type": "string"
          },
          "api": {
            "type": "string"
          },
          "node": {
            "type": "string"
          }
        },
        "required": [
          "version",
          "api",
          "node"
        ]
      },
      "PortInfo": {
        "type": "object",
        "properties": {
          "name": {
            "type": "string"
          },
          "number": {
            "type": "integer"
          },
          "protocol": {
            "type": "string"
          }
        },
        "required": [
          "name",
          "number",
          "protocol"
        ]
      },
      "ExitInfo": {
        "type": "object",
        "properties": {
          "code": {
            "type": "integer"
          },
          "signal": {
            "type": "integer"
          },
          "oomKilled": {
            "type": "boolean"
          }
        },
        "required": [
          "oomKilled"
        ]
      },
      "InstanceEventInfo": {
        "type": "object",
        "properties": {
          "time": {
            "type": "integer"
          },
          "status": {
            "type": "string"
          },
          "message": {
            "type": "string"
          }
        },
        "required": [
          "time",
          "status",
          "message"
        ]
      },
      "InstanceInfo": {
        "type": "object",
        "properties": {
          "id": {
            "type": "string"
          },
          "application": {
            "type": "string"
          },
          "service": {
            "type": "string"
          },
          "index": {
            "type": "integer"
          },
          "revision": {
            "type": "integer"
          },
          "node": {
            "type": "string"
          },
          "ports": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/PortInfo"
            }
          },
          "desired": {
            "enum": [
              "run",
              "stop"
            ]
          },
          "status": {
            "enum": [
              "pending",
              "starting",
              "running",
              "healthy",
              "unhealthy",
              "completed",
              "failed",
              "stopped",
              "lost"
            ]
          },
          "exit": {
            "$ref": "#/components/schemas/ExitInfo"
          },
          "events": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/InstanceEventInfo"
            }
          },
          "createdIndex": {
            "type": "integer"
          }
        },
        "required": [
          "id",
          "application",
          "service",
          "index",
          "revision",
          "node",
          "ports",
          "desired",
          "status",
          "events",
          "createdIndex"
        ]
      },
      "ServiceStatus": {
        "type": "object",
        "properties": {
          "name": {
            "type": "string"
          },
          "revision": {
            "type": "integer"
          },
          "replicas": {
            "type": "integer"
          },
          "ready": {
            "type": "integer"
          },
          "counts": {
            "type": "object",
            "additionalProperties": {
              "type": "integer"
            }
          },
          "unplaced": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "isBatch": {
            "type": "boolean"
          }
        },
        "required": [
          "name",
          "revision",
          "replicas",
          "ready",
          "counts",
          "unplaced",
          "isBatch"
        ]
      },
      "RevisionInfo": {
        "type": "object",
        "properties": {
          "number": {
            "type": "integer"
          },
          "appliedIndex": {
            "type": "integer"
          },
          "appliedAt": {
            "type": "integer"
          }
        },
        "required": [
          "number",
          "appliedIndex",
          "appliedAt"
        ]
      },
      "ApplicationInfo": {
        "type": "object",
        "properties": {
          "name": {
            "type": "string"
          },
          "revision": {
            "type": "integer"
          },
          "description": {
            "type": "string"
          },
          "services": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/ServiceStatus"
            }
          },
          "revisions": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/RevisionInfo"
            }
          },
          "manifest": {
            "type": "string"
          }
        },
        "required": [
          "name",
          "revision",
          "description",
          "services"
        ]
      },
      "ApplyResult": {
        "type": "object",
        "properties": {
          "application": {
            "type": "string"
          },
          "revision": {
            "type": "integer"
          },
          "created": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "replaced": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "updatedInPlace": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "removed": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "unchanged": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "dryRun": {
            "type": "boolean"
          },
          "index": {
            "type": "integer"
          }
        },
        "required": [
          "application",
          "revision",
          "created",
          "replaced",
          "updatedInPlace",
          "removed",
          "unchanged",
          "dryRun",
          "index"
        ]
      },
      "NodeInfo": {
        "type": "object",
        "properties": {
          "name": {
            "type": "string"
          },
          "address": {
            "type": "string"
          },
          "status": {
            "enum": [
              "ready",
              "down",
              "draining"
            ]
          },
          "labels": {
            "type": "object",
            "additionalProperties": {
              "type": "string"
            }
          },
          "os": {
            "type": "string"
          },
          "arch": {
            "type": "string"
          },
          "kernel": {
            "type": "string"
          },
          "cpus": {
            "type": "integer"
          },
          "memoryBytes": {
            "type": "integer"
          },
          "capacityCPUMillicores": {
            "type": "integer"
          },
          "capacityMemoryBytes": {
            "type": "integer"
          },
          "reservedCPUMillicores": {
            "type": "integer"
          },
          "reservedMemoryBytes": {
            "type": "integer"
          },
          "instances": {
            "type": "integer"
          },
          "lastHeartbeat": {
            "type": "integer"
          }
        },
        "required": [
          "name",
          "address",
          "status",
          "labels",
          "os",
          "arch",
          "kernel",
          "cpus",
          "memoryBytes",
          "capacityCPUMillicores",
          "capacityMemoryBytes",
          "reservedCPUMillicores",
          "reservedMemoryBytes",
          "instances",
          "lastHeartbeat"
        ]
      },
      "ClusterEvent": {
        "type": "object",
        "properties": {
          "index": {
            "type": "integer"
          },
          "time": {
            "type": "integer"
          },
          "kind": {
            "type": "string"
          },
          "application": {
            "type": "string"
          },
          "service": {
            "type": "string"
          },
          "instance": {
            "type": "string"
          },
          "node": {
            "type": "string"
          },
          "message": {
            "type": "string"
          }
        },
        "required": [
          "index",
          "time",
          "kind",
          "message"
        ]
      },
      "ClusterStatus": {
        "type": "object",
        "properties": {
          "index": {
            "type": "integer"
          },
          "leader": {
            "type": "string"
          },
          "term": {
            "type": "integer"
          },
          "applications": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/ApplicationInfo"
            }
          },
          "nodes": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/NodeInfo"
            }
          }
        },
        "required": [
          "index",
          "term",
          "applications",
          "nodes"
        ]
      },
      "ScaleRequest": {
        "type": "object",
        "properties": {
          "replicas": {
            "type": "integer",
            "minimum": 0,
            "maximum": 10000
          },
          "revision": {
            "type": "integer"
          }
        },
        "required": [
          "replicas"
        ]
      },
      "CommandOutcome": {
        "type": "object",
        "properties": {
          "message": {
            "type": "string"
          },
          "index": {
            "type": "integer"
          }
        },
        "required": [
          "message",
          "index"
        ]
      },
      "ServiceDescription": {
        "type": "object",
        "properties": {
          "application": {
            "type": "string"
          },
          "status": {
            "$ref": "#/components/schemas/ServiceStatus"
          },
          "manifest": {
            "type": "string"
          },
          "instances": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/InstanceInfo"
            }
          }
        },
        "required": [
          "application",
          "status",
          "manifest",
          "instances"
        ]
      },
      "LogLine": {
        "type": "object",
        "properties": {
          "time": {
            "type": "integer"
          },
          "stream": {
            "enum": [
              "stdout",
              "stderr"
            ]
          },
          "text": {
            "type": "string"
          }
        },
        "required": [
          "time",
          "stream",
          "text"
        ]
      }
    },
    "securitySchemes": {
      "bearer": {
        "type": "http",
        "scheme": "bearer"
      }
    }
  }
}
"""#
}
