//! [`ListObjectsStream`]: List Objects page by page, as a `Stream` or a `next_page` loop.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use cos_core::ops::{ListObjectsOutput, ListObjectsPages};
use cos_core::Error;

use crate::Client;

type PageFuture = Pin<Box<dyn Future<Output = Result<ListObjectsOutput, Error>> + Send>>;

/// The pages of a List Objects listing, one request per page (see [`Client::list_objects_pages`]).
/// Pagination is decided by [`ListObjectsPages`]: a server whose marker does not advance, or that is still
/// truncated after the page cap, ends the listing with an [`Error::UnexpectedResponse`]. After an error
/// the listing ends.
///
/// It is a [`futures_core::Stream`] of pages; without a stream library, loop on
/// [`next_page`](Self::next_page).
pub struct ListObjectsStream {
    client: Client,
    pages: ListObjectsPages,
    pending: Option<PageFuture>,
}

impl std::fmt::Debug for ListObjectsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListObjectsStream")
            .field("pages", &self.pages)
            .field("pending", &self.pending.is_some())
            .finish()
    }
}

impl ListObjectsStream {
    pub(crate) fn new(client: Client, pages: ListObjectsPages) -> Self {
        ListObjectsStream {
            client,
            pages,
            pending: None,
        }
    }

    /// The next page, or `None` when the listing is complete (or has failed).
    pub async fn next_page(&mut self) -> Option<Result<ListObjectsOutput, Error>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_page(cx)).await
    }

    fn poll_page(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<ListObjectsOutput, Error>>> {
        if self.pending.is_none() {
            let Some(op) = self.pages.next_request() else {
                return Poll::Ready(None);
            };
            let client = self.client.clone();
            self.pending = Some(Box::pin(async move { client.execute(op).await }));
        }
        let fut = self.pending.as_mut().expect("a request is pending");
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                self.pending = None;
                Poll::Ready(Some(self.pages.handle(r)))
            }
        }
    }
}

impl futures_core::Stream for ListObjectsStream {
    type Item = Result<ListObjectsOutput, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_page(cx)
    }
}
