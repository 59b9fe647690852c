//! S3 calls shared by the stages, with errors that name the operation, bucket and key.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::io::AsyncRead;
use tokio::runtime::Handle;

use crate::{Error, Result};

/// The smallest part S3 accepts in a multipart upload, except the last one.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// The part size the writers upload: large enough for few requests, small enough that a
/// Lambda's memory holds one comfortably.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// The error code the embedded S3 answers when its folder's disk is full (`s3s-fs` alone
/// answers `InternalError`, which the client retries as a passing fault). Known to every
/// build: the functions' client maps it, the embedded server (a feature) sends it.
pub const DISK_FULL_CODE: &str = "LocalDiskFull";

/// A bucket and a client: where a stage reads and writes.
#[derive(Debug, Clone)]
pub struct Lake {
    client: Client,
    bucket: String,
}

impl Lake {
    /// The lake in `bucket`, reached through `client`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Lake {
        Lake { client, bucket: bucket.into() }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The S3 client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn error(&self, operation: &'static str, key: &str, error: impl std::error::Error) -> Error {
        let message = crate::error_chain(&error);
        if message.contains(DISK_FULL_CODE) {
            // The embedded S3's own disk (offline): not a passing fault of S3.
            return Error::DiskFull {
                place: format!("the embedded S3 store (bucket {})", self.bucket),
                message: format!(
                    "{operation} of {key} failed: free space on the home's disk (or move the home with --home) and run or re-drive again"
                ),
            };
        }
        Error::S3 { operation, bucket: self.bucket.clone(), key: key.to_string(), message }
    }

    /// A streaming reader over an object (a given version of it, when `version` is set).
    pub async fn reader(&self, key: &str, version: Option<&str>) -> Result<impl AsyncRead + Send + Unpin + use<>> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
            .map_err(|error| self.error("GetObject", key, error))?;
        Ok(output.body.into_async_read())
    }

    /// The object's ETag (one `HeadObject`): whether it changed since it was last read;
    /// `None` when there is no such object.
    pub async fn etag(&self, key: &str) -> Result<Option<String>> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(output) => Ok(Some(output.e_tag().unwrap_or_default().to_string())),
            Err(aws_sdk_s3::error::SdkError::ServiceError(error)) if error.err().is_not_found() => Ok(None),
            Err(error) => Err(self.error("HeadObject", key, error)),
        }
    }

    /// Streams an object into a local file (Parquet needs random access to read). What S3
    /// sends and what the disk takes fail apart: bytes that do not match the checksum the
    /// object was written with are [`Error::CorruptObject`] (not retried: they are what is
    /// stored), a full disk [`Error::DiskFull`].
    pub async fn download(&self, key: &str, file: std::fs::File) -> Result<u64> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut reader = self.reader(key, None).await?;
        let mut file = tokio::fs::File::from_std(file);
        let mut buffer = vec![0; 256 * 1024];
        let mut bytes = 0u64;
        loop {
            let read = reader.read(&mut buffer).await.map_err(|error| self.read_failure(key, error))?;
            if read == 0 {
                break;
            }
            file.write_all(&buffer[..read]).await.map_err(Error::temp_io)?;
            bytes += read as u64;
        }
        file.flush().await.map_err(Error::temp_io)?;
        Ok(bytes)
    }

    /// A failure reading an object's body: its checksum not matching is damage, else S3's.
    fn read_failure(&self, key: &str, error: std::io::Error) -> Error {
        let chain = crate::error_chain(&error);
        if chain.contains("checksum mismatch") {
            return Error::corrupt_part(key, format!("its bytes do not match the checksum stored with it ({chain})"));
        }
        self.error("GetObject", key, error)
    }

    /// Downloads objects into anonymous temporary files (deleted when dropped), in order: the
    /// stages read Parquet parts from local disk, which needs no memory for the file.
    pub async fn spool(&self, keys: &[String]) -> Result<Vec<(String, std::fs::File)>> {
        let mut spools = Vec::with_capacity(keys.len());
        for key in keys {
            let spool = tempfile::tempfile().map_err(Error::temp_io)?;
            self.download(key, spool.try_clone().map_err(Error::temp_io)?).await?;
            spools.push((key.clone(), spool));
        }
        Ok(spools)
    }

    /// The whole object, for small objects such as the contract.
    pub async fn get_bytes(&self, key: &str) -> Result<Vec<u8>> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|error| self.error("GetObject", key, error))?;
        let bytes = output.body.collect().await.map_err(|error| self.error("GetObject", key, error))?;
        Ok(bytes.to_vec())
    }

    /// The whole object, or `None` when there is no such object.
    pub async fn get_optional(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let output = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(output) => output,
            Err(aws_sdk_s3::error::SdkError::ServiceError(error)) if error.err().is_no_such_key() => return Ok(None),
            Err(error) => return Err(self.error("GetObject", key, error)),
        };
        let bytes = output.body.collect().await.map_err(|error| self.error("GetObject", key, error))?;
        Ok(Some(bytes.to_vec()))
    }

    /// Writes a small object in one request.
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|error| self.error("PutObject", key, error))?;
        Ok(())
    }

    /// Copies an object within the bucket, server-side (the bytes never pass through us).
    pub async fn copy(&self, from_key: &str, version: Option<&str>, to_key: &str) -> Result<()> {
        let mut source = format!("{}/{}", self.bucket, url_encode_key(from_key));
        if let Some(version) = version {
            source.push_str("?versionId=");
            source.push_str(&url_encode_key(version));
        }
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(to_key)
            .copy_source(source)
            .send()
            .await
            .map_err(|error| self.error("CopyObject", from_key, error))?;
        Ok(())
    }

    /// Every key under a prefix, in key order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| self.error("ListObjectsV2", prefix, error))?;
            keys.extend(page.contents().iter().filter_map(|object| object.key().map(str::to_string)));
        }
        keys.sort();
        Ok(keys)
    }

    /// Deletes objects one by one (few, small folders: stale parts of an earlier attempt).
    pub async fn delete(&self, keys: &[String]) -> Result<()> {
        for key in keys {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(|error| self.error("DeleteObject", key, error))?;
        }
        Ok(())
    }

    /// Removes every object under `prefix` that is not in `keep`: what an earlier attempt of the
    /// same run left and this one did not write again.
    pub async fn prune(&self, prefix: &str, keep: &[String]) -> Result<()> {
        let stale: Vec<String> = self.list(prefix).await?.into_iter().filter(|key| !keep.contains(key)).collect();
        self.delete(&stale).await
    }
}

/// Percent-encodes a key for `x-amz-copy-source`, keeping `/` as the separator.
fn url_encode_key(key: &str) -> String {
    percent_encode_key(key, "%20")
}

/// Percent-encodes an object key byte by byte, keeping unreserved characters and `/`; a
/// space becomes `space` (`%20` in URLs, `+` in S3 event notifications).
pub fn percent_encode_key(key: &str, space: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        match byte {
            b' ' => out.push_str(space),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A synchronous [`std::io::Write`] into one S3 object: bytes are buffered into parts and
/// uploaded as a multipart upload, so memory holds at most one part whatever the object's
/// size. Small objects go up in one `PutObject`.
///
/// It blocks on the Tokio runtime to upload: use it from a blocking thread
/// (`tokio::task::spawn_blocking`), as the stages' synchronous transform code runs.
pub struct MultipartWriter {
    lake: Lake,
    key: String,
    content_type: String,
    handle: Handle,
    buffer: Vec<u8>,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    written: u64,
    part_size: usize,
}

impl MultipartWriter {
    /// A writer of `key`; nothing is sent before the first part fills.
    pub fn new(lake: &Lake, key: impl Into<String>, content_type: &str, handle: Handle) -> MultipartWriter {
        MultipartWriter {
            lake: lake.clone(),
            key: key.into(),
            content_type: content_type.to_string(),
            handle,
            buffer: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
            written: 0,
            part_size: PART_SIZE,
        }
    }

    /// Uploads parts of `bytes` (at least S3's 5 MiB) instead of the default 8 MiB: less
    /// memory when many objects are written at once.
    pub fn with_part_size(mut self, bytes: usize) -> MultipartWriter {
        self.part_size = bytes.max(MIN_PART_SIZE);
        self
    }

    /// The key being written.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn upload_part(&mut self) -> Result<()> {
        let lake = &self.lake;
        let key = &self.key;
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let output = self
                    .handle
                    .block_on(
                        lake.client
                            .create_multipart_upload()
                            .bucket(&lake.bucket)
                            .key(key)
                            .content_type(&self.content_type)
                            .send(),
                    )
                    .map_err(|error| lake.error("CreateMultipartUpload", key, error))?;
                let id = output
                    .upload_id()
                    .ok_or_else(|| {
                        lake.error("CreateMultipartUpload", key, std::io::Error::other("no upload id in the answer"))
                    })?
                    .to_string();
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        let body = std::mem::take(&mut self.buffer);
        let output = self
            .handle
            .block_on(
                lake.client
                    .upload_part()
                    .bucket(&lake.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(ByteStream::from(body))
                    // TLS and the SDK's CRC32 checksum of the part already protect it; a SHA-256
                    // of every byte for the signature would only cost CPU.
                    .customize()
                    .disable_payload_signing()
                    .send(),
            )
            .map_err(|error| lake.error("UploadPart", key, error))?;
        self.parts
            .push(CompletedPart::builder().part_number(number).set_e_tag(output.e_tag().map(str::to_string)).build());
        Ok(())
    }

    /// Uploads what is left and completes the object.
    pub fn finish(mut self) -> Result<u64> {
        let result = self.complete();
        if result.is_err() {
            self.abort();
        }
        result.map(|()| self.written)
    }

    fn complete(&mut self) -> Result<()> {
        let lake = self.lake.clone();
        let key = self.key.clone();
        let Some(upload_id) = self.upload_id.clone() else {
            let body = std::mem::take(&mut self.buffer);
            return self.handle.block_on(lake.put_bytes(&key, body, &self.content_type));
        };
        if !self.buffer.is_empty() {
            self.upload_part()?;
        }
        let parts = CompletedMultipartUpload::builder().set_parts(Some(std::mem::take(&mut self.parts))).build();
        self.handle
            .block_on(
                lake.client
                    .complete_multipart_upload()
                    .bucket(&lake.bucket)
                    .key(&key)
                    .upload_id(upload_id)
                    .multipart_upload(parts)
                    .send(),
            )
            .map_err(|error| lake.error("CompleteMultipartUpload", &key, error))?;
        self.upload_id = None;
        Ok(())
    }

    /// Abandons the upload, so S3 keeps no orphan parts.
    fn abort(&mut self) {
        if let Some(upload_id) = self.upload_id.take() {
            let lake = &self.lake;
            let request =
                lake.client.abort_multipart_upload().bucket(&lake.bucket).key(&self.key).upload_id(upload_id).send();
            if let Err(error) = self.handle.block_on(request) {
                tracing::warn!(key = %self.key, error = %crate::error_chain(&error), "Could not abort a multipart upload.");
            }
        }
    }
}

impl std::io::Write for MultipartWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        self.written += bytes.len() as u64;
        if self.buffer.len() >= self.part_size {
            self.upload_part().map_err(std::io::Error::other)?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for MultipartWriter {
    fn drop(&mut self) {
        self.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::url_encode_key;

    #[test]
    fn copy_source_keys_are_percent_encoded() {
        assert_eq!(url_encode_key("landing/a b+c/é.csv"), "landing/a%20b%2Bc/%C3%A9.csv");
    }
}
