//! [`ListObjectsIter`]: List Objects page by page, as an iterator.

use cos_core::ops::{ListObjects, ListObjectsOutput, ListObjectsPages};
use cos_core::Error;

use crate::Client;

/// The pages of a List Objects listing, fetched one request per `next()` (see
/// [`Client::list_objects_pages`]). Pagination is decided by [`ListObjectsPages`]: a server whose marker
/// does not advance, or that is still truncated after the page cap, ends the iteration with an
/// [`Error::UnexpectedResponse`]. After an error the iterator ends.
#[derive(Debug)]
pub struct ListObjectsIter {
    client: Client,
    pages: ListObjectsPages,
}

impl ListObjectsIter {
    pub(crate) fn new(client: Client, pages: ListObjectsPages) -> Self {
        ListObjectsIter { client, pages }
    }
}

impl Iterator for ListObjectsIter {
    type Item = Result<ListObjectsOutput, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let op: ListObjects = self.pages.next_request()?;
        Some(self.pages.handle(self.client.execute(op)))
    }
}
