//! An in-process S3 server over a local folder (`s3s` + `s3s-fs`), for the offline stack
//! and for tests. The real `aws-sdk-s3` client talks the real protocol to it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{S3Request, S3Response, S3Result};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::{Error, Result};

const ACCESS_KEY: &str = "lakestar";
const SECRET_KEY: &str = "lakestar-local-secret";

/// A running S3 endpoint on `127.0.0.1:<free port>`; buckets are folders under its root.
/// Stops when dropped.
#[derive(Debug)]
pub struct EmbeddedS3 {
    address: SocketAddr,
    root: PathBuf,
    stop: Option<oneshot::Sender<()>>,
}

impl EmbeddedS3 {
    /// Starts a server over `root` (created if missing) on a free loopback port.
    pub async fn start(root: &Path) -> Result<EmbeddedS3> {
        Self::start_on(root, 0).await
    }

    /// Starts a server over `root` on the given port (0 for any free one). One server at a
    /// time serves a root (the offline stack holds its home's lock): multipart uploads a
    /// killed process left behind are removed first, as the lake bucket's lifecycle rule
    /// aborts incomplete uploads in AWS.
    pub async fn start_on(root: &Path, port: u16) -> Result<EmbeddedS3> {
        let io_error = |source| Error::Io { path: root.to_path_buf(), source };
        std::fs::create_dir_all(root).map_err(io_error)?;
        remove_abandoned_uploads(root).map_err(io_error)?;
        let filesystem = s3s_fs::FileSystem::new(root)
            .map_err(|error| Error::Configuration(format!("embedded S3 over {}: {error:?}", root.display())))?;
        let mut builder = S3ServiceBuilder::new(LakeStorage { inner: filesystem, root: root.to_path_buf() });
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();

        let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(io_error)?;
        let address = listener.local_addr().map_err(io_error)?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let server = ConnectionBuilder::new(TokioExecutor::new());
            loop {
                let socket = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => socket,
                        Err(error) => {
                            tracing::warn!(%error, "Embedded S3 could not accept a connection.");
                            continue;
                        }
                    },
                    _ = &mut stopped => break,
                };
                let connection = server.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
        });
        Ok(EmbeddedS3 { address, root: root.to_path_buf(), stop: Some(stop) })
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The folder holding the buckets.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The access key and secret the server accepts.
    pub fn credentials(&self) -> (&'static str, &'static str) {
        (ACCESS_KEY, SECRET_KEY)
    }

    /// An `aws-sdk-s3` client for this endpoint (path-style, static credentials).
    pub fn client(&self) -> Client {
        Self::client_for(&self.endpoint())
    }

    /// A client for an embedded endpoint running elsewhere (another process), by URL.
    pub fn client_for(endpoint: &str) -> Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "lakestar-embedded"))
            .build();
        Client::from_conf(config)
    }

    /// Creates a bucket unless it exists.
    pub async fn create_bucket(&self, bucket: &str) -> Result<()> {
        if self.root.join(bucket).is_dir() {
            return Ok(());
        }
        self.client().create_bucket().bucket(bucket).send().await.map_err(|error| Error::S3 {
            operation: "CreateBucket",
            bucket: bucket.to_string(),
            key: String::new(),
            message: crate::error_chain(&error),
        })?;
        Ok(())
    }
}

/// Removes what unfinished multipart uploads keep in the store's root: their records
/// (`.upload-<id>.json`), parts (`.upload_id-<id>.part-<n>`) and metadata
/// (`.bucket-….upload-<id>.metadata.json`). Returns how many files went.
fn remove_abandoned_uploads(root: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let upload = name.starts_with(".upload-") || name.starts_with(".upload_id-");
        let metadata = name.starts_with(".bucket-") && name.contains(".upload-");
        if (upload || metadata) && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(root = %root.display(), files = removed, "Removed unfinished multipart uploads.");
    }
    Ok(removed)
}

impl Drop for EmbeddedS3 {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The embedded S3's storage: `s3s-fs` over the folder, answering as S3 does where a key
/// names a folder on disk (a "directory" of keys, such as `curated/fact_sales`): no such key
/// (404), where `s3s-fs` alone answers an internal error (500), which tools that probe for
/// directories (pyarrow's dataset discovery, `aws s3 ls`) take for a broken endpoint.
struct LakeStorage {
    inner: s3s_fs::FileSystem,
    root: PathBuf,
}

impl LakeStorage {
    /// Whether `bucket/key` is a folder on disk rather than an object.
    fn is_folder(&self, bucket: &str, key: &str) -> bool {
        !key.is_empty() && self.root.join(bucket).join(key).is_dir()
    }

    /// A write's result, a full disk answered as [`super::s3::DISK_FULL_CODE`] naming the folder.
    fn written<T>(&self, result: S3Result<T>) -> S3Result<T> {
        result.map_err(|error| {
            let mut source: Option<&(dyn std::error::Error + 'static)> =
                error.source().map(|source| source as &(dyn std::error::Error + 'static));
            while let Some(cause) = source {
                if let Some(io) = cause.downcast_ref::<std::io::Error>()
                    && (io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28))
                {
                    let code = super::s3::DISK_FULL_CODE.parse().unwrap_or(s3s::S3ErrorCode::InternalError);
                    return s3s::S3Error::with_message(code, format!("the disk of {} is full", self.root.display()));
                }
                source = cause.source();
            }
            error
        })
    }
}

#[async_trait::async_trait]
impl s3s::S3 for LakeStorage {
    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        if self.is_folder(&req.input.bucket, &req.input.key) {
            return Err(s3s::s3_error!(NoSuchKey));
        }
        self.inner.head_object(req).await
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        if self.is_folder(&req.input.bucket, &req.input.key) {
            return Err(s3s::s3_error!(NoSuchKey));
        }
        self.inner.get_object(req).await
    }

    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        self.written(self.inner.create_bucket(req).await)
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        self.written(self.inner.copy_object(req).await)
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.inner.delete_bucket(req).await
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.inner.delete_object(req).await
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.inner.delete_objects(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.inner.get_bucket_location(req).await
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        self.inner.head_bucket(req).await
    }

    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        self.inner.list_buckets(req).await
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        self.inner.list_objects(req).await
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.inner.list_objects_v2(req).await
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        self.written(self.inner.put_object(req).await)
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.written(self.inner.create_multipart_upload(req).await)
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        self.written(self.inner.upload_part(req).await)
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.written(self.inner.upload_part_copy(req).await)
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        self.inner.list_parts(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.written(self.inner.complete_multipart_upload(req).await)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.inner.abort_multipart_upload(req).await
    }
}
